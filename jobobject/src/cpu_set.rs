//! A set of logical CPUs of any number, shown and parsed as a CPU list (`0-3,64-127`).

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A set of logical CPUs, numbered from 0 across the whole machine (on Windows across its
/// processor groups, in order): for machines with more than 64 CPUs, which an affinity mask
/// (`u64`) cannot name. Shown and parsed in the kernel's CPU list notation.
///
/// ```
/// use jobobject::CpuSet;
///
/// let cpus: CpuSet = "0-1,64,4095".parse()?;
/// assert_eq!(cpus.len(), 4);
/// assert!(cpus.contains(64));
/// assert_eq!(cpus.to_string(), "0-1,64,4095");
/// assert_eq!(cpus.mask(), None); // not all below 64
/// assert_eq!(CpuSet::from_mask(0b1011).to_string(), "0-1,3");
/// # Ok::<(), jobobject::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CpuSet {
    /// Bit `i % 64` of word `i / 64` is CPU `i`; no zero word at the end.
    words: Vec<u64>,
}

impl CpuSet {
    /// No CPU.
    pub fn new() -> Self {
        Self::default()
    }

    /// The CPUs of an affinity mask: bit `i` is CPU `i`.
    pub fn from_mask(mask: u64) -> Self {
        let mut set = CpuSet { words: vec![mask] };
        set.trim();
        set
    }

    /// Adds CPU `cpu`.
    pub fn insert(&mut self, cpu: u16) {
        let (word, bit) = (usize::from(cpu) / 64, cpu % 64);
        if self.words.len() <= word {
            self.words.resize(word + 1, 0);
        }
        self.words[word] |= 1 << bit;
    }

    /// Whether CPU `cpu` is in the set.
    pub fn contains(&self, cpu: u16) -> bool {
        self.words
            .get(usize::from(cpu) / 64)
            .is_some_and(|w| w & (1 << (cpu % 64)) != 0)
    }

    /// The CPUs, in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &word)| {
            (0..64u16)
                .filter(move |bit| word & (1 << bit) != 0)
                .map(move |bit| i as u16 * 64 + bit)
        })
    }

    /// How many CPUs.
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The set as an affinity mask, if all its CPUs are below 64.
    pub fn mask(&self) -> Option<u64> {
        match self.words.as_slice() {
            [] => Some(0),
            [mask] => Some(*mask),
            _ => None,
        }
    }

    /// Whether every CPU of this set is in `other`.
    pub fn is_subset(&self, other: &CpuSet) -> bool {
        self.words
            .iter()
            .enumerate()
            .all(|(i, w)| w & !other.words.get(i).copied().unwrap_or(0) == 0)
    }

    /// The CPUs of this set that are not in `other`.
    pub fn difference(&self, other: &CpuSet) -> CpuSet {
        let mut set = CpuSet {
            words: self
                .words
                .iter()
                .enumerate()
                .map(|(i, w)| w & !other.words.get(i).copied().unwrap_or(0))
                .collect(),
        };
        set.trim();
        set
    }

    /// Parses a CPU list such as `0,2-3,64-127` (the kernel's notation; blanks around
    /// entries allowed; an empty list is the empty set). A malformed entry, a range that runs
    /// backwards, or a CPU from 65536 up is [`Error::InvalidArgument`] saying which.
    pub fn parse(list: &str) -> Result<CpuSet, Error> {
        let bad = |why: String| {
            Error::invalid(format!(
                "{list:?} is not a CPU list ({why}): use e.g. 0,2-3"
            ))
        };
        let mut set = CpuSet::new();
        if list.trim().is_empty() {
            return Ok(set);
        }
        for part in list.trim().split(',').map(str::trim) {
            if part.is_empty() {
                return Err(bad("empty entry".into()));
            }
            let (start, end) = part.split_once('-').unwrap_or((part, part));
            let cpu = |text: &str| {
                let text = text.trim();
                if !text.bytes().all(|b| b.is_ascii_digit()) || text.is_empty() {
                    return Err(bad(format!("{text:?} is not a CPU number")));
                }
                text.parse::<u16>()
                    .map_err(|_| bad(format!("CPU {text} is beyond the highest, 65535")))
            };
            let (start, end) = (cpu(start)?, cpu(end)?);
            if start > end {
                return Err(bad(format!("range {part} runs backwards")));
            }
            for cpu in start..=end {
                set.insert(cpu);
            }
        }
        Ok(set)
    }

    fn trim(&mut self) {
        while self.words.last() == Some(&0) {
            self.words.pop();
        }
    }
}

impl fmt::Display for CpuSet {
    /// The CPU list, such as `0-1,3` (empty for the empty set).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut cpus = self.iter().peekable();
        let mut first = true;
        while let Some(start) = cpus.next() {
            let mut end = start;
            while cpus.peek() == Some(&(end + 1)) {
                end += 1;
                cpus.next();
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for CpuSet {
    type Err = Error;

    fn from_str(list: &str) -> Result<Self, Error> {
        CpuSet::parse(list)
    }
}

impl FromIterator<u16> for CpuSet {
    fn from_iter<I: IntoIterator<Item = u16>>(cpus: I) -> Self {
        let mut set = CpuSet::new();
        for cpu in cpus {
            set.insert(cpu);
        }
        set
    }
}

impl crate::JobObject {
    /// Restricts the job to the CPUs of `cpus`, of any number (where
    /// [`set_cpu_affinity`](Self::set_cpu_affinity)'s mask names the first 64 only); `None`
    /// lets it run on every CPU it could without a limit. An empty set, or CPUs the host does
    /// not have, are [`Error::InvalidArgument`] naming them as a CPU list; what the kernel
    /// refuses changes nothing.
    ///
    /// Linux: `cpuset.cpus`, as for the mask. Windows: a set within the first 64 CPUs is the
    /// job's affinity, as for the mask; a wider one is one affinity per processor group
    /// (`JobObjectGroupInformationEx`, CPUs numbered across the groups in order), which only a
    /// Windows machine with more than one group can show (the tests run under Wine, which has
    /// one).
    ///
    /// ```
    /// use jobobject::{CpuSet, JobObject, Options};
    ///
    /// # fn main() -> Result<(), jobobject::Error> {
    /// let job = JobObject::create(&Options::default())?;
    /// let first: CpuSet = "0".parse()?;
    /// match job.set_cpu_set(Some(&first)) {
    ///     Ok(()) => assert_eq!(job.cpu_set()?, Some(first)),
    ///     // Wine implements no affinity; a host may refuse cpusets.
    ///     Err(err) => println!("no CPU set here: {err}"),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_cpu_set(&self, cpus: Option<&CpuSet>) -> crate::Result<()> {
        if let Some(cpus) = cpus {
            if cpus.is_empty() {
                return Err(Error::invalid(
                    "a CPU set may not be empty (to remove the limit, clear it)",
                ));
            }
        }
        self.inner.set_cpu_set(cpus)
    }

    /// The CPUs the job is restricted to, `None` when it is not.
    pub fn cpu_set(&self) -> crate::Result<Option<CpuSet>> {
        self.inner.cpu_set()
    }
}

/// Checks that `cpus` are among the host's `online` CPUs.
pub(crate) fn check_online(cpus: &CpuSet, online: &CpuSet) -> Result<(), Error> {
    let unknown = cpus.difference(online);
    if unknown.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "CPU set {cpus} names CPUs this host does not have: {unknown} (it has {online})"
    )))
}

#[cfg(test)]
mod tests;
