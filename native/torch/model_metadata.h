// Reads film_features.json, the metadata models/export.py stores in a TorchScript file's extra
// files: {"weights": "random, seed 0", ...}. Only the string fields the addon reports are read, so
// a small scanner does instead of a JSON library. Header-only: included by model.cc alone.
#pragma once

#include <string>

namespace film {

inline constexpr const char* kMetadataFile = "film_features.json";

// Appends code point cp as UTF-8.
inline void AppendUtf8(unsigned cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// The value of the top-level string field `key` in a flat JSON object, or `fallback` when the
// field is absent, not a string, or the text is malformed. Never throws on bad input.
inline std::string JsonStringField(const std::string& json, const std::string& key, const std::string& fallback) {
  const std::string quoted = "\"" + key + "\"";
  size_t pos = json.find(quoted);
  if (pos == std::string::npos) return fallback;
  pos = json.find_first_not_of(" \t\r\n", pos + quoted.size());
  if (pos == std::string::npos || json[pos] != ':') return fallback;
  pos = json.find_first_not_of(" \t\r\n", pos + 1);
  if (pos == std::string::npos || json[pos] != '"') return fallback;
  std::string value;
  for (size_t i = pos + 1; i < json.size(); ++i) {
    const char c = json[i];
    if (c == '"') return value;
    if (c != '\\') {
      value.push_back(c);
      continue;
    }
    if (++i >= json.size()) return fallback;
    switch (json[i]) {
      case 'n': value.push_back('\n'); break;
      case 't': value.push_back('\t'); break;
      case 'r': value.push_back('\r'); break;
      case 'b': value.push_back('\b'); break;
      case 'f': value.push_back('\f'); break;
      case 'u': {
        if (i + 4 >= json.size()) return fallback;
        unsigned cp = 0;
        for (size_t k = 1; k <= 4; ++k) {
          const char h = json[i + k];
          cp <<= 4;
          if (h >= '0' && h <= '9') cp |= h - '0';
          else if (h >= 'a' && h <= 'f') cp |= h - 'a' + 10;
          else if (h >= 'A' && h <= 'F') cp |= h - 'A' + 10;
          else return fallback;
        }
        AppendUtf8(cp, &value);  // surrogate pairs come out as two 3-byte units: still readable
        i += 4;
        break;
      }
      default: value.push_back(json[i]);  // \" \\ \/
    }
  }
  return fallback;  // unterminated
}

}  // namespace film
