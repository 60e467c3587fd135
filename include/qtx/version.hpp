#pragma once
/// @file
/// The single source of truth for qtx's version: CMakeLists.txt parses these lines.
#define QTX_VERSION_MAJOR 0
#define QTX_VERSION_MINOR 1
#define QTX_VERSION_PATCH 0
#define QTX_VERSION (QTX_VERSION_MAJOR * 10000 + QTX_VERSION_MINOR * 100 + QTX_VERSION_PATCH)
#define QTX_VERSION_AT_LEAST(major, minor, patch) \
  (QTX_VERSION >= ((major) * 10000 + (minor) * 100 + (patch)))
