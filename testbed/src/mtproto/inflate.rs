//! A small gzip / DEFLATE (RFC 1951/1952) decoder.
//!
//! grammers compresses every request of 512 bytes or more into a
//! `gzip_packed`, so the server must be able to unpack it. The crate has no
//! direct compression dependency, and decoding is all we need, so this is
//! a straightforward canonical-Huffman inflater in the style of zlib's
//! `puff.c`: correct rather than fast, and requests are small.

/// Decompresses a gzip member (header, DEFLATE body, trailer).
pub(crate) fn gunzip(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < 18 || data[0] != 0x1f || data[1] != 0x8b || data[2] != 8 {
        return None;
    }
    let flags = data[3];
    let mut pos = 10;
    if flags & 0x04 != 0 {
        let xlen = u16::from_le_bytes([*data.get(pos)?, *data.get(pos + 1)?]) as usize;
        pos += 2 + xlen;
    }
    for bit in [0x08, 0x10] {
        if flags & bit != 0 {
            while *data.get(pos)? != 0 {
                pos += 1;
            }
            pos += 1;
        }
    }
    if flags & 0x02 != 0 {
        pos += 2;
    }
    let body = data.get(pos..data.len().checked_sub(8)?)?;
    let out = inflate(body)?;
    let isize = u32::from_le_bytes(data[data.len() - 4..].try_into().ok()?);
    (out.len() as u32 == isize).then_some(out)
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    buf: u32,
    count: u32,
}

impl Bits<'_> {
    fn bits(&mut self, need: u32) -> Option<u32> {
        let mut val = self.buf;
        while self.count < need {
            let byte = *self.data.get(self.pos)? as u32;
            self.pos += 1;
            val |= byte << self.count;
            self.count += 8;
        }
        self.buf = if need >= 32 { 0 } else { val >> need };
        self.count -= need;
        Some(if need >= 32 { val } else { val & ((1 << need) - 1) })
    }
}

struct Huffman {
    counts: [u16; 16],
    symbols: Vec<u16>,
}

impl Huffman {
    fn new(lengths: &[u8]) -> Self {
        let mut counts = [0u16; 16];
        for &l in lengths {
            counts[l as usize] += 1;
        }
        let mut offs = [0u16; 16];
        for len in 1..15 {
            offs[len + 1] = offs[len] + counts[len];
        }
        let mut symbols = vec![0u16; lengths.len()];
        for (symbol, &l) in lengths.iter().enumerate() {
            if l != 0 {
                symbols[offs[l as usize] as usize] = symbol as u16;
                offs[l as usize] += 1;
            }
        }
        Huffman { counts, symbols }
    }

    fn decode(&self, bits: &mut Bits<'_>) -> Option<u16> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..16 {
            code |= bits.bits(1)? as i32;
            let count = self.counts[len] as i32;
            if code - count < first {
                return self.symbols.get((index + (code - first)) as usize).copied();
            }
            index += count;
            first += count;
            first <<= 1;
            code <<= 1;
        }
        None
    }
}

const LBASE: [u16; 29] =
    [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LEXT: [u8; 29] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DBASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145,
    8193, 12289, 16385, 24577,
];
const DEXT: [u8; 30] =
    [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];

/// Inflates a raw DEFLATE stream.
pub(crate) fn inflate(data: &[u8]) -> Option<Vec<u8>> {
    let mut bits = Bits { data, pos: 0, buf: 0, count: 0 };
    let mut out = Vec::with_capacity(data.len() * 4);
    loop {
        let last = bits.bits(1)?;
        match bits.bits(2)? {
            0 => {
                bits.buf = 0;
                bits.count = 0;
                let p = bits.pos;
                let len = u16::from_le_bytes([*data.get(p)?, *data.get(p + 1)?]);
                let nlen = u16::from_le_bytes([*data.get(p + 2)?, *data.get(p + 3)?]);
                if len != !nlen {
                    return None;
                }
                let start = p + 4;
                out.extend_from_slice(data.get(start..start + len as usize)?);
                bits.pos = start + len as usize;
            }
            1 => {
                let mut lengths = [0u8; 288];
                lengths[..144].fill(8);
                lengths[144..256].fill(9);
                lengths[256..280].fill(7);
                lengths[280..].fill(8);
                let lit = Huffman::new(&lengths);
                let dist = Huffman::new(&[5u8; 30]);
                codes(&mut bits, &mut out, &lit, &dist)?;
            }
            2 => {
                let nlen = bits.bits(5)? as usize + 257;
                let ndist = bits.bits(5)? as usize + 1;
                let ncode = bits.bits(4)? as usize + 4;
                if nlen > 286 || ndist > 30 {
                    return None;
                }
                const ORDER: [usize; 19] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];
                let mut lengths = [0u8; 320];
                for &i in ORDER.iter().take(ncode) {
                    lengths[i] = bits.bits(3)? as u8;
                }
                let lencode = Huffman::new(&lengths[..19]);
                let mut index = 0;
                while index < nlen + ndist {
                    let symbol = lencode.decode(&mut bits)?;
                    if symbol < 16 {
                        lengths[index] = symbol as u8;
                        index += 1;
                    } else {
                        let (value, repeat) = match symbol {
                            16 => (*lengths.get(index.checked_sub(1)?)?, 3 + bits.bits(2)? as usize),
                            17 => (0, 3 + bits.bits(3)? as usize),
                            _ => (0, 11 + bits.bits(7)? as usize),
                        };
                        if index + repeat > nlen + ndist {
                            return None;
                        }
                        lengths[index..index + repeat].fill(value);
                        index += repeat;
                    }
                }
                let lit = Huffman::new(&lengths[..nlen]);
                let dist = Huffman::new(&lengths[nlen..nlen + ndist]);
                codes(&mut bits, &mut out, &lit, &dist)?;
            }
            _ => return None,
        }
        if last == 1 {
            return Some(out);
        }
    }
}

fn codes(bits: &mut Bits<'_>, out: &mut Vec<u8>, lit: &Huffman, dist: &Huffman) -> Option<()> {
    loop {
        let symbol = lit.decode(bits)? as usize;
        if symbol < 256 {
            out.push(symbol as u8);
        } else if symbol == 256 {
            return Some(());
        } else {
            let s = symbol - 257;
            if s >= 29 {
                return None;
            }
            let len = LBASE[s] as usize + bits.bits(LEXT[s] as u32)? as usize;
            let d = dist.decode(bits)? as usize;
            if d >= 30 {
                return None;
            }
            let back = DBASE[d] as usize + bits.bits(DEXT[d] as u32)? as usize;
            if back > out.len() {
                return None;
            }
            let start = out.len() - back;
            for i in 0..len {
                let b = out[start + i];
                out.push(b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `printf 'hello hello hello hello\n' | gzip -9 -n`
    const HELLO: &[u8] = &[
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x57, 0xc8, 0x40,
        0x27, 0xb9, 0x00, 0x00, 0x88, 0x59, 0x0b, 0x18, 0x00, 0x00, 0x00,
    ];

    /// Python's `gzip.compress(text, 9)` of 120 random words (a dynamic-Huffman block).
    const DYNAMIC: &str = "1f8b08000000000002036d92dd0d83300c8457c90415fd61a010508b040585b04097e8127de85ba54ec10c9da481e3200e3ca06073fe7cb171b6cc7a57a8abae6bad4cdfb9a62eacca0ba7cbaa53ba6a6f5a653e5265ae7e8f577a4812c46eae6c6d93f7c6cd524a86e7f01ebefef9848c85bfbc4ce9403cc5842c2a20bc03368bcbe897a734c58867c4dd78657fdf1073696c1e9a46524c83682803001da14668795212f8e070c538b4314d7f7712226f18205a5b9a62616f467a3c9d2f69b0c451bc1a1b237ec39502324a71217a422e5ee4fe54249e0464a1146bdeff25d05ede023980a21d730e130c55ab1d3443d6af8cb8d861fcc7cba1a17ccafd0141c154c555030000";

    #[test]
    fn gunzips_a_dynamic_huffman_member() {
        let data = hex::decode(DYNAMIC).unwrap();
        let out = String::from_utf8(gunzip(&data).unwrap()).unwrap();
        assert_eq!(out.len(), 853);
        let words = [
            "alpha",
            "beta",
            "gamma",
            "Заказ",
            "order",
            "tribute",
            "customer",
            "price",
            "€5.00",
            "product",
            "details",
            "account",
            "12345",
            "id",
        ];
        assert_eq!(out.split(' ').count(), 120);
        assert!(out.split(' ').all(|w| words.contains(&w)), "{out}");
    }

    #[test]
    fn gunzips_a_fixed_huffman_member() {
        assert_eq!(gunzip(HELLO).unwrap(), b"hello hello hello hello\n");
    }

    #[test]
    fn rejects_garbage() {
        assert!(gunzip(b"not gzip at all, definitely not").is_none());
        assert!(gunzip(&HELLO[..20]).is_none());
    }
}
