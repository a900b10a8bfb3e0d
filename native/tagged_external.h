// Type tags for the JS values the addon hands out and later takes back as its own: every External
// it makes (a model's handoff from load() to its class, a frame run's held levels) and every
// instance of its classes. One tag per kind; a value is cast to what the tag says only after
// napi_check_object_type_tag says it carries that tag, so any other value (another kind's External,
// another addon's, a plain object) is a TypeError, never a cast.
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>
#include <string>

#include "errors.h"

namespace film {

// The tag of a kind, by its name: "FILM" and the name's 64-bit FNV-1a hash.
constexpr napi_type_tag TypeTagOf(const char* kind) {
  uint64_t hash = 14695981039346656037ULL;
  for (const char* c = kind; *c; ++c) hash = (hash ^ static_cast<unsigned char>(*c)) * 1099511628211ULL;
  return {0x46494c4d00000000ULL, hash};
}

// Whether value is an object (an External included) tagged with tag.
inline bool HasTypeTag(const Napi::Value& value, const napi_type_tag& tag) {
  if (!value.IsObject() && !value.IsExternal()) return false;
  bool tagged = false;
  return napi_check_object_type_tag(value.Env(), value, &tag, &tagged) == napi_ok && tagged;
}

// Tags object (once, right after the addon made it).
inline void SetTypeTag(const Napi::Value& object, const napi_type_tag& tag) {
  NAPI_THROW_IF_FAILED_VOID(object.Env(), napi_type_tag_object(object.Env(), object, &tag));
}

// An External of data (deleted when the External is collected), tagged with tag.
template <typename T>
Napi::External<T> NewTaggedExternal(Napi::Env env, std::unique_ptr<T> data, const napi_type_tag& tag) {
  Napi::External<T> external = Napi::External<T>::New(env, data.get(), [](Napi::Env, T* p) { delete p; });
  data.release();  // the External's now
  SetTypeTag(external, tag);
  return external;
}

// What value holds, when it is an External tagged with tag; else a TypeError saying expected.
template <typename T>
T* TaggedExternalData(const Napi::Value& value, const napi_type_tag& tag, const std::string& expected) {
  FILM_TYPE_ERROR_IF(!value.IsExternal() || !HasTypeTag(value, tag), expected);
  return value.As<Napi::External<T>>().Data();
}

}  // namespace film
