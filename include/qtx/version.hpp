#pragma once
/// @file
/// The single source of truth for qtx's version: CMakeLists.txt parses these lines.

/// Major version: a change breaks the API (packages are SameMajorVersion compatible).
#define QTX_VERSION_MAJOR 0
/// Minor version: additions that keep the API.
#define QTX_VERSION_MINOR 1
/// Patch version: fixes only.
#define QTX_VERSION_PATCH 0
/// The version as one comparable number, MAJOR·10000 + MINOR·100 + PATCH.
#define QTX_VERSION (QTX_VERSION_MAJOR * 10000 + QTX_VERSION_MINOR * 100 + QTX_VERSION_PATCH)
/// True when this qtx is at least major.minor.patch: guards code that needs a newer API.
#define QTX_VERSION_AT_LEAST(major, minor, patch) \
  (QTX_VERSION >= ((major) * 10000 + (minor) * 100 + (patch)))
