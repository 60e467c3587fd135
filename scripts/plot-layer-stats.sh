#!/usr/bin/env bash
# Plots per-layer outlier statistics as a PNG with gnuplot.
#   scripts/plot-layer-stats.sh CSV PNG [TITLE] [RESIDUAL_CSV]
# CSV: layer,max_inf_norm,mean_inf_norm,avg_kurtosis of the layer outputs (every example writes it).
# RESIDUAL_CSV (examples/bert's residual_stats.csv): the residual sums before each LN, per layer:
# layer, then max inf-norm, mean inf-norm, avg kurtosis of x + attention and of x + FFN. With it the
# plot has two panels on log scales, inf-norms and kurtosis, the sums beside the layer outputs: a
# post-LN model's outliers live in those sums (MiniLM: inf-norm ~224), not in its LN outputs.
set -euo pipefail
csv="$1" png="$2" title="${3:-per-layer outlier statistics}" residual_csv="${4:-}"
if [ -z "${residual_csv}" ]; then
  gnuplot <<GP
set terminal pngcairo size 900,500 font ",11"
set output "${png}"
set datafile separator ","
set title "${title}"
set xlabel "layer"
set ylabel "inf-norm"
set y2label "kurtosis"
set ytics nomirror
set y2tics
set key top left
set style data linespoints
plot "${csv}" every ::1 using 1:2 title "max inf-norm" lw 2, \
     "" every ::1 using 1:3 title "mean inf-norm" lw 2, \
     "" every ::1 using 1:4 axes x1y2 title "avg kurtosis" lw 2 dt 2
GP
else
  gnuplot <<GP
set terminal pngcairo size 1300,520 font ",11"
set output "${png}"
set datafile separator ","
set multiplot layout 1,2 title "${title}"
set xlabel "layer"
set xtics 1
set logscale y
set grid ytics mytics
set key top left box opaque
set style data linespoints
set title "max inf-norm per sequence (solid) and its mean (dashed)"
set ylabel "inf-norm"
plot "${residual_csv}" every ::1 using 1:5 title "x + FFN (last LN input)" lw 2 lc 1 pt 7, \
     "" every ::1 using 1:6 notitle lw 1 lc 1 dt 2 pt 6, \
     "" every ::1 using 1:2 title "x + attention (first LN input)" lw 2 lc 2 pt 5, \
     "" every ::1 using 1:3 notitle lw 1 lc 2 dt 2 pt 4, \
     "${csv}" every ::1 using 1:2 title "layer output (after LN)" lw 2 lc 3 pt 9, \
     "" every ::1 using 1:3 notitle lw 1 lc 3 dt 2 pt 8
set title "average kurtosis (Gaussian = 3)"
set ylabel "kurtosis"
plot "${residual_csv}" every ::1 using 1:7 title "x + FFN (last LN input)" lw 2 lc 1 pt 7, \
     "" every ::1 using 1:4 title "x + attention (first LN input)" lw 2 lc 2 pt 5, \
     "${csv}" every ::1 using 1:4 title "layer output (after LN)" lw 2 lc 3 pt 9
unset multiplot
GP
fi
echo "plot-layer-stats.sh: wrote ${png}"
