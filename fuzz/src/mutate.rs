//! A small seeded RNG and byte-level mutations.

/// SplitMix64: tiny, fast, and good enough to pick mutations; reproducible from its seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Bytes that often reach edge cases in parsers.
const INTERESTING: &[u8] = &[
    0, 1, 0x7f, 0x80, 0xff, 0xfe, b'\n', b'\r', b'\t', 0x1b, b'%', b'@', b':', b'/', b'?', b'&',
    b'=', b',', b'[', b']', b'"', b'\'', b'#', b';', b'\\', b' ', b'.', b'-', b'0', b'9',
];

/// Applies random mutations to corpus entries.
pub struct Mutator {
    rng: Rng,
    dictionary: &'static [&'static [u8]],
    max_len: usize,
}

impl Mutator {
    /// A mutator seeded with `seed`, inserting tokens from `dictionary`, producing inputs of at
    /// most `max_len` bytes.
    pub fn new(seed: u64, dictionary: &'static [&'static [u8]], max_len: usize) -> Self {
        Mutator {
            rng: Rng::new(seed),
            dictionary,
            max_len,
        }
    }

    /// Write into `out` a random corpus entry of `seeds` (non-empty) with 1..=8 mutations.
    pub fn mutate_from(&mut self, seeds: &[Vec<u8>], out: &mut Vec<u8>) {
        let base = &seeds[self.rng.below(seeds.len())];
        out.extend_from_slice(base);
        let rounds = 1 + self.rng.below(8);
        for _ in 0..rounds {
            self.mutate_once(seeds, out);
        }
        out.truncate(self.max_len);
    }

    fn mutate_once(&mut self, seeds: &[Vec<u8>], out: &mut Vec<u8>) {
        let r = &mut self.rng;
        match r.below(10) {
            0 if !out.is_empty() => {
                let i = r.below(out.len());
                out[i] ^= 1 << r.below(8);
            }
            1 if !out.is_empty() => {
                let i = r.below(out.len());
                out[i] = r.next_u64() as u8;
            }
            2 if !out.is_empty() => {
                let i = r.below(out.len());
                out[i] = INTERESTING[r.below(INTERESTING.len())];
            }
            3 => {
                let i = r.below(out.len() + 1);
                out.insert(i, INTERESTING[r.below(INTERESTING.len())]);
            }
            4 if !out.is_empty() => {
                let start = r.below(out.len());
                let len = 1 + r.below((out.len() - start).min(16));
                out.drain(start..start + len);
            }
            5 if !out.is_empty() => {
                // Duplicate a range (repeats, long inputs).
                let start = r.below(out.len());
                let len = 1 + r.below((out.len() - start).min(64));
                let chunk: Vec<u8> = out[start..start + len].to_vec();
                let at = r.below(out.len() + 1);
                out.splice(at..at, chunk);
            }
            6 | 7 if !self.dictionary.is_empty() => {
                let token = self.dictionary[r.below(self.dictionary.len())];
                let i = r.below(out.len() + 1);
                if r.below(2) == 0 || out.is_empty() {
                    out.splice(i..i, token.iter().copied());
                } else {
                    let end = (i + token.len()).min(out.len());
                    out.splice(i..end, token.iter().copied());
                }
            }
            8 => {
                // Splice: a random part of another entry.
                let other = &seeds[r.below(seeds.len())];
                if !other.is_empty() {
                    let start = r.below(other.len());
                    let len = 1 + r.below(other.len() - start);
                    let at = r.below(out.len() + 1);
                    out.splice(at..at, other[start..start + len].iter().copied());
                }
            }
            _ => {
                // Random bytes appended or a multi-byte integer overwritten (lengths, ports).
                let n = 1 + r.below(4);
                if out.len() >= n && r.below(2) == 0 {
                    let i = r.below(out.len() - n + 1);
                    let v = r.next_u64().to_le_bytes();
                    out[i..i + n].copy_from_slice(&v[..n]);
                } else {
                    for _ in 0..n {
                        out.push(r.next_u64() as u8);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_inputs() {
        let seeds = vec![b"mysql://u@h/db".to_vec()];
        let run = |seed| {
            let mut m = Mutator::new(seed, &[b"@"], 64);
            (0..100)
                .map(|_| {
                    let mut v = Vec::new();
                    m.mutate_from(&seeds, &mut v);
                    v
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        assert!(run(7).iter().all(|v| v.len() <= 64));
    }
}
