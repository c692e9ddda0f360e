#include "lowbit/hw/wide_int.hpp"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

namespace lowbit::hw {

WideInt::WideInt(int64_t v) {
  limbs_[0] = static_cast<uint64_t>(v);
  const uint64_t fill = v < 0 ? ~uint64_t{0} : 0;
  for (int i = 1; i < kLimbs; ++i) limbs_[i] = fill;
}

WideInt WideInt::operator+(const WideInt& o) const {
  WideInt r;
  unsigned __int128 carry = 0;
  for (int i = 0; i < kLimbs; ++i) {
    const unsigned __int128 s = static_cast<unsigned __int128>(limbs_[i]) + o.limbs_[i] + carry;
    r.limbs_[i] = static_cast<uint64_t>(s);
    carry = s >> 64;
  }
  return r;
}

WideInt WideInt::operator-() const {
  WideInt inverted;
  for (int i = 0; i < kLimbs; ++i) inverted.limbs_[i] = ~limbs_[i];
  return inverted + WideInt(1);
}

WideInt WideInt::operator-(const WideInt& o) const { return *this + (-o); }

WideInt WideInt::shifted_left(int k) const {
  if (k < 0) throw std::invalid_argument("WideInt: negative shift");
  WideInt r;
  if (k >= kBits) return r;
  const int words = k / 64, bits = k % 64;
  for (int i = kLimbs - 1; i >= words; --i) {
    uint64_t v = limbs_[i - words] << bits;
    if (bits && i - words - 1 >= 0) v |= limbs_[i - words - 1] >> (64 - bits);
    r.limbs_[i] = v;
  }
  return r;
}

WideInt WideInt::shifted_right(int k) const {
  if (k < 0) throw std::invalid_argument("WideInt: negative shift");
  const uint64_t fill = negative() ? ~uint64_t{0} : 0;
  WideInt r;
  r.limbs_.fill(fill);
  if (k >= kBits) return r;
  const int words = k / 64, bits = k % 64;
  for (int i = 0; i + words < kLimbs; ++i) {
    uint64_t v = limbs_[i + words] >> bits;
    const uint64_t next = i + words + 1 < kLimbs ? limbs_[i + words + 1] : fill;
    if (bits) v |= next << (64 - bits);
    r.limbs_[i] = v;
  }
  return r;
}

WideInt WideInt::times(uint64_t m) const {
  const bool neg = negative();
  const WideInt mag = neg ? -*this : *this;
  WideInt r;
  unsigned __int128 carry = 0;
  for (int i = 0; i < kLimbs; ++i) {
    const unsigned __int128 p = static_cast<unsigned __int128>(mag.limbs_[i]) * m + carry;
    r.limbs_[i] = static_cast<uint64_t>(p);
    carry = p >> 64;
  }
  if (carry != 0 || r.negative()) throw std::overflow_error("WideInt: product exceeds 1024 bits");
  return neg ? -r : r;
}

bool WideInt::operator<(const WideInt& o) const {
  if (negative() != o.negative()) return negative();
  for (int i = kLimbs - 1; i >= 0; --i)
    if (limbs_[i] != o.limbs_[i]) return limbs_[i] < o.limbs_[i];
  return false;
}

int WideInt::unsigned_width() const {
  if (negative()) throw std::invalid_argument("WideInt::unsigned_width of a negative value");
  for (int i = kLimbs - 1; i >= 0; --i)
    if (limbs_[i]) return i * 64 + 64 - __builtin_clzll(limbs_[i]);
  return 1;
}

int WideInt::signed_width() const {
  // A negative x fits W bits when ~x (= -x - 1, non-negative) fits W - 1 bits.
  WideInt m = *this;
  if (negative())
    for (auto& l : m.limbs_) l = ~l;
  bool zero = std::all_of(m.limbs_.begin(), m.limbs_.end(), [](uint64_t l) { return l == 0; });
  return zero ? 1 : m.unsigned_width() + 1;
}

std::string WideInt::to_hex(int width) const {
  if (width < 1 || width > kBits) throw std::invalid_argument(fmt::format("WideInt::to_hex: width {} out of range", width));
  const int digits = (width + 3) / 4;
  std::string s(static_cast<size_t>(digits), '0');
  for (int d = 0; d < digits; ++d) {
    const int bit = d * 4;
    unsigned nibble = static_cast<unsigned>((limbs_[bit / 64] >> (bit % 64)) & 0xF);
    const int valid = std::min(4, width - bit);
    nibble &= (1u << valid) - 1;
    s[static_cast<size_t>(digits - 1 - d)] = "0123456789abcdef"[nibble];
  }
  return s;
}

WideInt WideInt::from_hex(const std::string& hex, int width, bool is_signed) {
  if (width < 1 || width > kBits) throw std::invalid_argument(fmt::format("WideInt::from_hex: width {} out of range", width));
  WideInt r;
  int bit = 0;
  for (auto it = hex.rbegin(); it != hex.rend(); ++it, bit += 4) {
    const char c = *it;
    unsigned v;
    if (c >= '0' && c <= '9') v = static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f') v = static_cast<unsigned>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v = static_cast<unsigned>(c - 'A' + 10);
    else throw std::invalid_argument(fmt::format("WideInt::from_hex: '{}' is not a hexadecimal number", hex));
    if (v == 0) continue;
    if (bit >= width) continue;  // above the register: Verilator keeps these zero
    r.limbs_[static_cast<size_t>(bit / 64)] |= static_cast<uint64_t>(v) << (bit % 64);
  }
  // Keep the low `width` bits, then sign-extend from bit width-1.
  for (int i = 0; i < kLimbs; ++i) {
    const int lo = i * 64;
    if (lo >= width) r.limbs_[i] = 0;
    else if (width - lo < 64) r.limbs_[i] &= (uint64_t{1} << (width - lo)) - 1;
  }
  if (is_signed && width < kBits) {
    const bool sign = (r.limbs_[(width - 1) / 64] >> ((width - 1) % 64)) & 1;
    if (sign) r = r - WideInt(1).shifted_left(width);
  }
  return r;
}

std::string WideInt::to_string() const {
  const bool neg = negative();
  WideInt m = neg ? -*this : *this;
  std::string digits;
  bool zero;
  do {
    // Divide by 10 limb by limb from the top.
    unsigned __int128 rem = 0;
    for (int i = kLimbs - 1; i >= 0; --i) {
      const unsigned __int128 cur = (rem << 64) | m.limbs_[i];
      m.limbs_[i] = static_cast<uint64_t>(cur / 10);
      rem = cur % 10;
    }
    digits.push_back(static_cast<char>('0' + static_cast<int>(rem)));
    zero = std::all_of(m.limbs_.begin(), m.limbs_.end(), [](uint64_t l) { return l == 0; });
  } while (!zero);
  if (neg) digits.push_back('-');
  return {digits.rbegin(), digits.rend()};
}

int64_t WideInt::to_int64() const {
  if (signed_width() > 64) throw std::overflow_error("WideInt: value " + to_string() + " does not fit 64 bits");
  return static_cast<int64_t>(limbs_[0]);
}

}  // namespace lowbit::hw
