//! CPU sets beyond 64 CPUs: one affinity per processor group (`JobObjectGroupInformationEx`),
//! with CPUs numbered across the active groups in order.

use std::ffi::c_void;

use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::System::JobObjects::{
    JobObjectGroupInformationEx, QueryInformationJobObject, SetInformationJobObject,
};
use windows_sys::Win32::System::SystemInformation::GROUP_AFFINITY;
use windows_sys::Win32::System::Threading::{
    GetActiveProcessorCount, GetActiveProcessorGroupCount,
};

use super::errors;
use crate::{CpuSet, Error};

/// The most processor groups Windows has.
const MAX_GROUPS: usize = 64;

/// Each active group's number and CPU count, in order.
fn groups() -> Vec<(u16, u32)> {
    // SAFETY: both calls only read the system's processor topology.
    let count = unsafe { GetActiveProcessorGroupCount() };
    (0..count)
        // SAFETY: as above, for a group that exists.
        .map(|group| (group, unsafe { GetActiveProcessorCount(group) }))
        .collect()
}

/// Every CPU of the host, numbered across its groups.
pub(super) fn online() -> CpuSet {
    let total: u32 = groups().iter().map(|(_, n)| n).sum();
    (0..total.min(u32::from(u16::MAX)) as u16).collect()
}

/// `cpus` as one affinity per group that has any of them.
fn affinities(cpus: &CpuSet) -> Vec<GROUP_AFFINITY> {
    let mut first = 0u32;
    let mut out = Vec::new();
    for (group, count) in groups() {
        let mut mask = 0usize;
        for bit in 0..count.min(usize::BITS) {
            if u16::try_from(first + bit).is_ok_and(|cpu| cpus.contains(cpu)) {
                mask |= 1 << bit;
            }
        }
        if mask != 0 {
            out.push(GROUP_AFFINITY {
                Mask: mask,
                Group: group,
                Reserved: [0; 3],
            });
        }
        first += count;
    }
    out
}

/// Restricts the job to `cpus` (among the host's: checked), one affinity per group.
pub(super) fn set(job: HANDLE, label: &str, cpus: &CpuSet) -> Result<(), Error> {
    crate::cpu_set::check_online(cpus, &online())?;
    let list = affinities(cpus);
    // SAFETY: `list` is a readable array of GROUP_AFFINITY of the size passed, the layout
    // JobObjectGroupInformationEx takes.
    let ok = unsafe {
        SetInformationJobObject(
            job,
            JobObjectGroupInformationEx,
            list.as_ptr().cast::<c_void>(),
            size_of_val(list.as_slice()) as u32,
        )
    };
    if ok == 0 {
        return Err(errors::maybe_unsupported(
            label,
            "set the processor groups (JobObjectGroupInformationEx)",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// The CPUs of the job's group affinities; `None` where it has none.
pub(super) fn get(job: HANDLE, label: &str) -> Result<Option<CpuSet>, Error> {
    let mut list = [GROUP_AFFINITY {
        Mask: 0,
        Group: 0,
        Reserved: [0; 3],
    }; MAX_GROUPS];
    let mut written = 0u32;
    // SAFETY: `list` is writable and as long as passed; the return length is written to
    // `written`.
    let ok = unsafe {
        QueryInformationJobObject(
            job,
            JobObjectGroupInformationEx,
            list.as_mut_ptr().cast::<c_void>(),
            size_of_val(&list) as u32,
            &mut written,
        )
    };
    if ok == 0 {
        return Err(errors::maybe_unsupported(
            label,
            "query the processor groups (JobObjectGroupInformationEx)",
            std::io::Error::last_os_error(),
        ));
    }
    let count = (written as usize / size_of::<GROUP_AFFINITY>()).min(MAX_GROUPS);
    let mut first = std::collections::HashMap::new();
    let mut start = 0u32;
    for (group, n) in groups() {
        first.insert(group, start);
        start += n;
    }
    let mut cpus = CpuSet::new();
    for affinity in &list[..count] {
        let Some(&base) = first.get(&affinity.Group) else {
            continue;
        };
        for bit in 0..usize::BITS {
            if affinity.Mask & (1 << bit) != 0 {
                if let Ok(cpu) = u16::try_from(base + bit) {
                    cpus.insert(cpu);
                }
            }
        }
    }
    Ok((!cpus.is_empty()).then_some(cpus))
}
