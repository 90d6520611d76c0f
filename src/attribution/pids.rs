//! Maps and sets keyed by PID, with a cheap hash: PIDs are small integers the kernel hands out,
//! not input an attacker picks, so SipHash's protection buys nothing here and it was the
//! largest cost of a sample after the workload lookups (`cargo bench --bench attribution`).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` keyed by PID.
pub type PidMap<V> = HashMap<u32, V, BuildHasherDefault<PidHasher>>;
/// A `HashSet` of PIDs.
pub type PidSet = HashSet<u32, BuildHasherDefault<PidHasher>>;

/// Fibonacci hashing of a `u32`: one multiplication, high bits spread over the table.
#[derive(Debug, Default, Clone, Copy)]
pub struct PidHasher(u64);

impl Hasher for PidHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 ^ u64::from(n)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_spread_and_round_trip() {
        let mut m: PidMap<u32> = PidMap::default();
        for pid in 1..=10_000 {
            m.insert(pid, pid * 2);
        }
        assert!((1..=10_000).all(|p| m.get(&p) == Some(&(p * 2))));
        let h = |p: u32| {
            let mut h = PidHasher::default();
            h.write_u32(p);
            h.finish() >> 57
        };
        let buckets: HashSet<u64> = (1000..1160).map(h).collect();
        assert!(
            buckets.len() > 64,
            "top 7 bits of 160 PIDs: {}",
            buckets.len()
        );
    }
}
