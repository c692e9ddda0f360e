#include <gtest/gtest.h>

#include "lowbit/format/format.hpp"

namespace lowbit {
namespace {

TEST(Parse, CanonicalForms) {
  const std::pair<const char*, const char*> cases[] = {
      {"int4", "int4"},
      {"INT4", "int4"},
      {"uint8", "uint8"},
      {"int8n", "int8n"},
      {"ternary", "int2n"},
      {"binary", "binary"},
      {"e4m3", "e4m3"},
      {"e2m1:specials=none", "e2m1:specials=none"},
      {"e4m3:saturate=no,specials=fn", "e4m3:specials=fn,saturate=no"},
      {"e4m3:bias=7", "e4m3"},
      {"e4m3:bias=8,specials=fnuz", "e4m3:bias=8,specials=fnuz"},
      {"float8_e4m3fn", "e4m3:specials=fn"},
      {"float8_e5m2", "e5m2"},
      {"ue4m4", "ue4m4"},
      {"e3m2:subnormals=off", "e3m2:subnormals=off"},
      {"fixed<8,3,AP_RND_CONV,AP_SAT>", "fixed<8,3,AP_RND_CONV,AP_SAT>"},
      {"fixed<8,3>", "fixed<8,3,AP_TRN,AP_WRAP>"},
      {"ap_ufixed<6,-2,ap_rnd,ap_wrap,2>", "ufixed<6,-2,AP_RND,AP_WRAP,2>"},
      {"mxfp4", "block(e2m1:specials=none,scale=e8m0,size=32,rule=floor)"},
      {"nvfp4", "block(e2m1:specials=none,scale=e4m3:specials=fn,size=16,rule=nearest,tensor_scale=fp32)"},
      {"block(e2m1,scale=e8m0,size=32,rule=floor)", "block(e2m1,scale=e8m0,size=32,rule=floor)"},
      {"block(e2m1:specials=none,subnormals=off,scale=e4m3:specials=fn,size=16,rule=ceil,axis=0)",
       "block(e2m1:specials=none,subnormals=off,scale=e4m3:specials=fn,size=16,rule=ceil,axis=0)"},
      {"block(int4,scale=fp32,size=64,rule=nearest)", "block(int4,scale=fp32,size=64,rule=nearest)"},
      {"block(fixed<8,2,AP_RND_CONV,AP_SAT>,scale=pow2,size=8,rule=ceil)", "block(fixed<8,2,AP_RND_CONV,AP_SAT>,scale=pow2,size=8,rule=ceil)"},
      {"bitmod_fp4", "bitmod_fp4"},
      {"bitmod_fp3(group=64)", "bitmod_fp3(group=64)"},
  };
  for (auto [in, want] : cases) {
    const Format f = Format::parse(in);
    EXPECT_EQ(f.to_string(), want) << in;
    EXPECT_EQ(Format::parse(f.to_string()).to_string(), f.to_string()) << in;
    EXPECT_TRUE(Format::parse(f.to_string()) == f) << in;
  }
}

TEST(Parse, EveryPresetRoundTrips) {
  for (const Preset& p : presets()) {
    const Format f = Format::parse(p.name);
    EXPECT_EQ(Format::parse(f.to_string()), f) << p.name;
    if (!p.alias && p.name != p.spec) {
      EXPECT_EQ(preset_name(f), p.name);
    }
  }
}

TEST(Parse, InvalidSpecsGetOneLineErrors) {
  const std::pair<const char*, const char*> cases[] = {
      {"e0m3", "exponent width E must be at least 1"},
      {"int0", "integer width must be 1..16"},
      {"int17", "integer width must be 1..16"},
      {"float9", "unknown format"},
      {"", "empty format"},
      {"e9m9", "2 to 16 bits"},
      {"e4m3:specials=weird", "specials must be ieee, fn, fnuz or none"},
      {"e4m3:colour=red", "unknown minifloat option 'colour'"},
      {"ue4m3:specials=fnuz", "needs a sign bit"},
      {"e8m7:bias=0", "outside float32"},
      {"fixed<0,3>", "width W must be 1..32"},
      {"fixed<8,3,AP_ROUND>", "unknown quantization mode 'AP_ROUND'"},
      {"fixed<8,3,AP_RND,AP_CLAMP>", "unknown overflow mode 'AP_CLAMP'"},
      {"fixed<8,3,AP_RND,AP_WRAP,9>", "saturation bits N must be 0..W"},
      {"ufixed<8,3,AP_RND,AP_WRAP_SM>", "AP_WRAP_SM needs a signed type"},
      {"fixed<8,200>", "outside float32"},
      {"fixed<8>", "takes 2 to 5 parameters"},
      {"block(e2m1,scale=e8m0,size=0,rule=floor)", "block size must be 1..4096"},
      {"block(e2m1,scale=e8m0,size=32,rule=up)", "rule must be floor, ceil or nearest"},
      {"block(e2m1,scale=int8,size=32,rule=floor)", "must be a floating-point format"},
      {"block(mxfp4,scale=e8m0)", "block element must be a scalar format"},
      {"bitmod_fp5", "expected bitmod_fp3 or bitmod_fp4"},
  };
  for (auto [spec, why] : cases) {
    try {
      Format::parse(spec);
      ADD_FAILURE() << spec << " was accepted";
    } catch (const FormatError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(why), std::string::npos) << spec << ": " << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << spec;
      EXPECT_NE(msg.find(spec), std::string::npos) << "the message names the spec: " << msg;
    }
  }
}

}  // namespace
}  // namespace lowbit
