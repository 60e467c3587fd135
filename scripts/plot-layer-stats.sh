#!/usr/bin/env bash
# Plots a layer_stats.csv (layer,max_inf_norm,mean_inf_norm,avg_kurtosis) as a PNG with gnuplot.
#   scripts/plot-layer-stats.sh CSV PNG [TITLE]
set -euo pipefail
csv="$1" png="$2" title="${3:-per-layer outlier statistics}"
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
echo "plot-layer-stats.sh: wrote ${png}"
