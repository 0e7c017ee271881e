//! Distinct clients in fixed space. An incident counts the clients behind it
//! exactly while they are few (at most [`EXACT_CLIENTS`], a set of client
//! keys), and from then on estimates them with a HyperLogLog sketch of
//! [`REGISTERS`] registers, which it keeps from the first batch on (so the
//! switch loses nothing). Both merge by set union, so a batch adds to them
//! with DynamoDB's blind `ADD`, and a redelivered or concurrent batch can
//! neither double count nor lose a client: the item's size depends on
//! neither devices nor batches.
//!
//! The sketch is stored as a number set of `register * 64 + rho` values.
//! A batch adds only the values that raise a register (over what it knew of
//! the stored sketch); a raised register leaves its smaller value behind,
//! dominated, until a compaction removes it (the estimate reads the maximum
//! per register, so a dominated value never changes it).

use std::collections::BTreeSet;
use std::fmt;

use crate::store::keys::fnv1a;

/// Clients counted exactly: past this many, the count is the sketch's estimate.
pub const EXACT_CLIENTS: usize = 32;
/// log2 of the sketch's registers.
pub const SKETCH_BITS: u32 = 7;
/// The sketch's registers: its relative standard error is 1.04 / sqrt(128) ≈ 9.2 %.
pub const REGISTERS: usize = 1 << SKETCH_BITS;
/// The estimate's relative standard error, as notifications state it (percent).
pub const STANDARD_ERROR_PERCENT: u32 = 9;
/// A register's largest value: a hash's remaining 57 bits all zero, plus one.
const MAX_RHO: u8 = (64 - SKETCH_BITS + 1) as u8;
/// Register `r` with value `rho` is stored as `r * RHO_SPAN + rho`.
const RHO_SPAN: u32 = 64;

/// A client id's key: 48 bits of FNV-1a, the format of the exact set (as
/// 12 hex digits) since the first release, so an item written then (with
/// its exact set only) can still be folded into a sketch.
pub fn client_key(client_id: &str) -> u64 {
    fnv1a(client_id.as_bytes()) & 0xffff_ffff_ffff
}

/// A key as the exact set stores it: 12 hex digits.
pub fn key_hex(key: u64) -> String {
    format!("{key:012x}")
}

/// A stored key back, if it is one.
pub fn parse_key_hex(text: &str) -> Option<u64> {
    (text.len() == 12)
        .then(|| u64::from_str_radix(text, 16).ok())
        .flatten()
}

/// MurmurHash3's 64-bit finalizer: FNV-1a's low bits mix poorly for names
/// that differ in their last characters (`dev-1`, `dev-2`), and the sketch
/// needs every bit uniform. A bijection, so distinct keys stay distinct.
fn mix(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// A HyperLogLog sketch: per register, the largest rank seen.
#[derive(Clone, PartialEq, Eq)]
pub struct Sketch {
    registers: [u8; REGISTERS],
}

impl Default for Sketch {
    fn default() -> Self {
        Self {
            registers: [0; REGISTERS],
        }
    }
}

impl fmt::Debug for Sketch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sketch{:?}", self.values())
    }
}

/// A stored sketch, read back: the sketch and the values it holds that a
/// larger value of the same register makes redundant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredSketch {
    pub sketch: Sketch,
    pub dominated: Vec<u32>,
}

impl Sketch {
    /// Adds a client key.
    pub fn add_key(&mut self, key: u64) {
        let h = mix(key);
        let register = (h >> (64 - SKETCH_BITS)) as usize;
        let rest = h << SKETCH_BITS;
        let rho = if rest == 0 {
            MAX_RHO
        } else {
            rest.leading_zeros() as u8 + 1
        };
        let slot = &mut self.registers[register];
        *slot = (*slot).max(rho);
    }

    pub fn merge(&mut self, other: &Sketch) {
        for (mine, theirs) in self.registers.iter_mut().zip(other.registers) {
            *mine = (*mine).max(theirs);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.registers.iter().all(|r| *r == 0)
    }

    /// The stored form: one value per register that has seen a key.
    pub fn values(&self) -> Vec<u32> {
        self.raises_over(&Sketch::default())
    }

    /// The values that raise a register of `stored`: all a write must add
    /// to a stored sketch known to hold at least `stored`.
    pub fn raises_over(&self, stored: &Sketch) -> Vec<u32> {
        self.registers
            .iter()
            .zip(stored.registers)
            .enumerate()
            .filter(|(_, (mine, theirs))| **mine > *theirs)
            .map(|(r, (mine, _))| r as u32 * RHO_SPAN + u32::from(*mine))
            .collect()
    }

    /// The sketch a stored value set stands for. Values this code would
    /// never write are ignored (they can only come from elsewhere).
    pub fn from_values(values: impl IntoIterator<Item = u32>) -> StoredSketch {
        let mut sketch = Sketch::default();
        let mut valid = Vec::new();
        for value in values {
            let (register, rho) = ((value / RHO_SPAN) as usize, (value % RHO_SPAN) as u8);
            if register < REGISTERS && (1..=MAX_RHO).contains(&rho) {
                sketch.registers[register] = sketch.registers[register].max(rho);
                valid.push(value);
            }
        }
        let kept: BTreeSet<u32> = sketch.values().into_iter().collect();
        let dominated = valid.into_iter().filter(|v| !kept.contains(v)).collect();
        StoredSketch { sketch, dominated }
    }

    /// The estimated number of distinct keys added: Ertl's improved
    /// estimator ("New cardinality estimation algorithms for HyperLogLog
    /// sketches", 2017, algorithm 6), unbiased from a handful of keys to
    /// billions without the usual switch to linear counting; relative
    /// standard error 1.04 / sqrt(m).
    pub fn estimate(&self) -> f64 {
        let m = REGISTERS as f64;
        let q = usize::from(MAX_RHO) - 1;
        let mut counts = vec![0u32; q + 2];
        for r in self.registers {
            counts[usize::from(r)] += 1;
        }
        let mut z = m * tau(1.0 - f64::from(counts[q + 1]) / m);
        for k in (1..=q).rev() {
            z += f64::from(counts[k]);
            z *= 0.5;
        }
        z += m * sigma(f64::from(counts[0]) / m);
        let alpha = 0.5 / std::f64::consts::LN_2;
        alpha * m * m / z
    }
}

fn sigma(mut x: f64) -> f64 {
    if x >= 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let previous = z;
        z += x * y;
        y += y;
        if z == previous {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x <= 0.0 || x >= 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let previous = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if z == previous {
            return z / 3.0;
        }
    }
}

/// How many distinct clients, and whether that is the sketch's estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCount {
    pub distinct: u64,
    pub estimated: bool,
}

/// The count an incident states: exact from its set while it has one, else
/// the sketch's estimate, never under what the exact set had proven (more
/// than [`EXACT_CLIENTS`]).
pub fn count(exact: Option<usize>, sketch: &Sketch) -> ClientCount {
    match exact {
        Some(n) => ClientCount {
            distinct: n as u64,
            estimated: false,
        },
        None => ClientCount {
            distinct: (sketch.estimate().round() as u64).max(EXACT_CLIENTS as u64 + 1),
            estimated: true,
        },
    }
}

/// An incident's distinct clients as kept: the exact keys while they are at
/// most [`EXACT_CLIENTS`], the sketch always. What the DynamoDB store's
/// writes keep (`aws::incidents`), as one value: the in-memory store's model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub exact: Option<BTreeSet<u64>>,
    pub sketch: Sketch,
}

impl Tally {
    /// What a batch's clients open an incident with.
    pub fn of(batch: &Clients) -> Self {
        Self {
            exact: batch.exact().cloned(),
            sketch: batch.sketch.clone(),
        }
    }

    /// Adds a batch's clients: to the exact set while the union stays
    /// within the bound, else the sketch alone counts from then on (with
    /// the exact set's keys folded in).
    pub fn add(&mut self, batch: &Clients) {
        let fits = match (&self.exact, batch.exact()) {
            (Some(stored), Some(new)) => stored.union(new).count() <= EXACT_CLIENTS,
            _ => false,
        };
        match (&mut self.exact, batch.exact()) {
            (Some(stored), Some(new)) if fits => stored.extend(new),
            (exact, _) => {
                for key in exact.take().into_iter().flatten() {
                    self.sketch.add_key(key);
                }
            }
        }
        self.sketch.merge(&batch.sketch);
    }

    pub fn count(&self) -> ClientCount {
        count(self.exact.as_ref().map(BTreeSet::len), &self.sketch)
    }
}

/// The clients of one batch's entries for one incident: their keys while
/// there are at most [`EXACT_CLIENTS`] (one more, to know the batch alone
/// is past it), and the sketch of all of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Clients {
    exact: BTreeSet<u64>,
    sketch: Sketch,
}

impl Clients {
    pub fn add(&mut self, client_id: &str) {
        let key = client_key(client_id);
        if self.exact.len() <= EXACT_CLIENTS {
            self.exact.insert(key);
        }
        self.sketch.add_key(key);
    }

    /// Adds `other`'s clients (the union, as if its entries had been added).
    pub fn merge(&mut self, other: &Clients) {
        for key in &other.exact {
            if self.exact.len() > EXACT_CLIENTS {
                break;
            }
            self.exact.insert(*key);
        }
        if other.exact.len() > EXACT_CLIENTS {
            // `other` alone is past the exact set: so is the union.
            self.exact.extend(other.exact.iter().copied());
        }
        self.sketch.merge(&other.sketch);
    }

    /// The keys, while they are at most [`EXACT_CLIENTS`].
    pub fn exact(&self) -> Option<&BTreeSet<u64>> {
        (self.exact.len() <= EXACT_CLIENTS).then_some(&self.exact)
    }

    pub fn sketch(&self) -> &Sketch {
        &self.sketch
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty()
    }

    pub fn count(&self) -> ClientCount {
        count(self.exact().map(BTreeSet::len), &self.sketch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sketch_of(prefix: &str, n: usize) -> Sketch {
        let mut s = Sketch::default();
        for i in 0..n {
            s.add_key(client_key(&format!("{prefix}{i}")));
        }
        s
    }

    /// The estimate is as good as stated across the range an incident sees,
    /// from just past the exact set to a large fleet: over many fleets of
    /// the same size, the mean error is near zero and the spread near
    /// 1.04 / sqrt(128). A wrong register count, rank or estimator moves
    /// one or the other far off.
    #[test]
    fn the_estimate_is_unbiased_with_its_stated_error() {
        let stated = 1.04 / (REGISTERS as f64).sqrt();
        assert!((stated * 100.0).round() as u32 == STANDARD_ERROR_PERCENT);
        for (n, fleets) in [
            (40, 300),
            (300, 200),
            (1_000, 100),
            (6_000, 40),
            (50_000, 8),
        ] {
            let errors: Vec<f64> = (0..fleets)
                .map(|f| sketch_of(&format!("fleet{f}-dev-"), n).estimate() / n as f64 - 1.0)
                .collect();
            let mean = errors.iter().sum::<f64>() / fleets as f64;
            let rms = (errors.iter().map(|e| e * e).sum::<f64>() / fleets as f64).sqrt();
            assert!(mean.abs() < 0.04, "n={n}: bias {mean:.3}");
            assert!(
                rms < stated * 1.4,
                "n={n}: error {rms:.3}, stated {stated:.3}"
            );
            if n <= 1_000 {
                assert!(
                    rms > stated * 0.3,
                    "n={n}: error {rms:.3} too small to be a sketch's"
                );
            }
        }
        assert_eq!(Sketch::default().estimate(), 0.0);
    }

    /// Merging is set union: the same clients again add nothing, and any
    /// split of a fleet over batches gives the sketch of the whole fleet.
    #[test]
    fn batches_merge_into_the_sketch_of_the_whole_fleet() {
        let whole = sketch_of("d", 5_000);
        let mut merged = Sketch::default();
        for batch in 0..50 {
            let mut part = Sketch::default();
            for i in (batch * 100)..(batch * 100 + 100) {
                part.add_key(client_key(&format!("d{i}")));
                // The same device again, in another batch.
                part.add_key(client_key(&format!("d{}", i / 2)));
            }
            merged.merge(&part);
        }
        assert_eq!(merged, whole);
    }

    /// What a batch adds is only what raises the stored registers, and the
    /// stored values read back as the same sketch whatever dominated
    /// values lie beside them; those are named for compaction.
    #[test]
    fn a_write_adds_only_raises_and_dominated_values_are_named() {
        let stored = sketch_of("a", 2_000);
        let batch = sketch_of("a", 2_050);
        let raises = batch.raises_over(&stored);
        assert!(raises.len() < 20, "{raises:?}");
        assert!(stored.raises_over(&stored).is_empty());
        let mut values = stored.values();
        values.extend(&raises);
        let read = Sketch::from_values(values);
        assert_eq!(read.sketch, batch);
        // Each raise leaves the register's old value behind.
        assert_eq!(read.dominated.len(), raises.len());
        assert_eq!(
            Sketch::from_values(read.sketch.values()).dominated,
            Vec::<u32>::new()
        );
        // Values this code never writes are ignored.
        assert_eq!(
            Sketch::from_values([0, 64 * 128 + 1, 59, 63]).sketch,
            Sketch::default()
        );
        // A stored sketch is at most one value per register.
        assert!(sketch_of("b", 1_000_000).values().len() <= REGISTERS);
    }

    /// Exact while few, estimated past the bound, and never under the bound
    /// once past it.
    #[test]
    fn a_batch_counts_exactly_up_to_the_bound_then_estimates() {
        let mut c = Clients::default();
        for i in 0..EXACT_CLIENTS {
            c.add(&format!("dev-{i}"));
            c.add(&format!("dev-{i}"));
        }
        assert_eq!(
            c.count(),
            ClientCount {
                distinct: EXACT_CLIENTS as u64,
                estimated: false
            }
        );
        c.add("one-more");
        assert_eq!(c.exact(), None);
        let past = c.count();
        assert!(
            past.estimated && past.distinct > EXACT_CLIENTS as u64,
            "{past:?}"
        );
        assert_eq!(count(None, &Sketch::default()).distinct, 33);
        assert_eq!(
            parse_key_hex(&key_hex(client_key("x"))),
            Some(client_key("x"))
        );
        assert_eq!(parse_key_hex("zz"), None);
    }
}
