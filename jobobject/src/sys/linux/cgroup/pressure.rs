//! Pressure stall information (PSI) of a job: the v2 `*.pressure` files, also on a hybrid
//! host's unified mount, and the kernel's triggers on them.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use rustix::fs::{Mode, OFlags};

use super::{JobCgroups, dir, os};
use crate::{Error, Pressure, PressureLine, PressureResource, PressureStats, PressureTrigger};

impl JobCgroups {
    /// The job's pressure on CPU, memory and I/O.
    pub(crate) fn pressure(&self) -> Result<PressureStats, Error> {
        let read = |resource: PressureResource| -> Result<Pressure, Error> {
            let file = file(resource);
            let fd = self.pressure_dir(resource)?;
            let text = dir::read(fd, &file).map_err(|e| self.pressure_error(&file, e))?;
            parse(&text).map_err(|e| self.pressure_error(&file, e))
        };
        Ok(PressureStats {
            cpu: read(PressureResource::Cpu)?,
            memory: read(PressureResource::Memory)?,
            io: read(PressureResource::Io)?,
        })
    }

    /// Opens the job's pressure file of `trigger`'s resource with the trigger set on it: the
    /// file then polls with `POLLPRI` each time the trigger fires, for as long as it is open.
    pub(crate) fn pressure_trigger(&self, trigger: &PressureTrigger) -> Result<OwnedFd, Error> {
        let file = file(trigger.resource);
        let dir = self.pressure_dir(trigger.resource)?;
        let fd = rustix::fs::openat(
            dir,
            file.as_str(),
            OFlags::RDWR | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .map_err(|e| self.pressure_error(&file, e.into()))?;
        let line = trigger_line(trigger);
        dir::write_all_once(fd.as_fd(), line.as_bytes()).map_err(|e| {
            match e.raw_os_error() {
                // Not a multiple of 2 s for a user without privileges, or a kernel's bound.
                Some(libc::EINVAL | libc::EPERM) => Error::invalid(format!(
                    "the kernel refuses the pressure trigger {line:?} on {file} of job {:?} \
                     ({e}; a process without CAP_SYS_RESOURCE needs a window that is a multiple of 2 s)",
                    self.name()
                )),
                _ => self.pressure_error(&file, e),
            }
        })?;
        Ok(fd)
    }

    /// The directory whose pressure files are the job's: its v2 one.
    fn pressure_dir(
        &self,
        resource: PressureResource,
    ) -> Result<std::os::fd::BorrowedFd<'_>, Error> {
        let fd = self.v2_fd().ok_or_else(|| Error::Unsupported {
            what: format!(
                "pressure of job {:?}: the kernel keeps it per cgroup v2 directory, and this \
                 host has no cgroup v2 mount",
                self.name()
            ),
        })?;
        if !dir::exists(fd, &file(resource)) {
            return Err(Error::Unsupported {
                what: format!(
                    "pressure of job {:?}: the kernel has no PSI (built without CONFIG_PSI, or \
                     booted with psi=0 or without psi=1)",
                    self.name()
                ),
            });
        }
        Ok(fd)
    }

    fn pressure_error(&self, file: &str, err: io::Error) -> Error {
        let path = self
            .v2()
            .map(|d| d.path.join(file))
            .unwrap_or_else(|| file.into());
        os(self.name(), "read", &path, err)
    }
}

fn file(resource: PressureResource) -> String {
    format!("{}.pressure", resource.name())
}

/// What the kernel takes to set a trigger: `some|full STALL_US WINDOW_US`.
fn trigger_line(trigger: &PressureTrigger) -> String {
    format!(
        "{} {} {}",
        if trigger.full { "full" } else { "some" },
        trigger.stall.as_micros(),
        trigger.window.as_micros()
    )
}

/// Parses a pressure file: a `some` line, and a `full` one where the kernel has it.
fn parse(text: &str) -> io::Result<Pressure> {
    let mut pressure = Pressure::default();
    let mut some = false;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let malformed = || super::controllers::malformed("pressure", line);
        let mut words = line.split_whitespace();
        let kind = words.next().ok_or_else(malformed)?;
        let mut parsed = PressureLine::default();
        for word in words {
            let (key, value) = word.split_once('=').ok_or_else(malformed)?;
            match key {
                "avg10" => parsed.avg10 = value.parse().map_err(|_| malformed())?,
                "avg60" => parsed.avg60 = value.parse().map_err(|_| malformed())?,
                "avg300" => parsed.avg300 = value.parse().map_err(|_| malformed())?,
                "total" => {
                    parsed.total = Duration::from_micros(value.parse().map_err(|_| malformed())?)
                }
                _ => {}
            }
        }
        match kind {
            "some" => {
                pressure.some = parsed;
                some = true;
            }
            "full" => pressure.full = Some(parsed),
            _ => return Err(malformed()),
        }
    }
    if !some {
        return Err(super::controllers::malformed("pressure", text));
    }
    Ok(pressure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pressure_files_are_read() {
        let text = "some avg10=1.50 avg60=0.25 avg300=0.00 total=123456\n\
                    full avg10=0.00 avg60=0.00 avg300=0.00 total=42\n";
        let pressure = parse(text).unwrap();
        assert_eq!(pressure.some.avg10, 1.5);
        assert_eq!(pressure.some.avg60, 0.25);
        assert_eq!(pressure.some.total, Duration::from_micros(123_456));
        assert_eq!(pressure.full.unwrap().total, Duration::from_micros(42));
        // CPU before Linux 5.13: no full line.
        let old = parse("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n").unwrap();
        assert_eq!(old.full, None);
        for bad in [
            "",
            "full avg10=0 avg60=0 avg300=0 total=0\n",
            "some avg10=x\n",
            "odd\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn triggers_are_written_in_microseconds() {
        let trigger = PressureTrigger::new(
            PressureResource::Memory,
            Duration::from_millis(150),
            Duration::from_secs(1),
        );
        assert_eq!(trigger_line(&trigger), "some 150000 1000000");
        assert_eq!(trigger_line(&trigger.full()), "full 150000 1000000");
    }
}
