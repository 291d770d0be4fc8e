//! What `top` needs of a terminal: its size, and keys as they are pressed (`q` quits, a
//! letter sorts), without the echo and line editing of a cooked terminal.
//!
//! Unix only: elsewhere the size is unknown and no key is read (Ctrl-C quits).

use std::sync::mpsc::Receiver;

/// The terminal's rows and columns, when stdout is one.
pub fn size() -> Option<(u16, u16)> {
    imp::size()
}

/// Keys pressed on the terminal of stdin, while this lives; the terminal is put back as it
/// was when it drops.
pub struct Keys {
    pub keys: Receiver<u8>,
    _raw: imp::Raw,
}

/// Starts reading keys, if stdin is a terminal.
pub fn keys() -> Option<Keys> {
    let (raw, keys) = imp::start()?;
    Some(Keys { keys, _raw: raw })
}

#[cfg(unix)]
mod imp {
    use std::io::{IsTerminal, Read};
    use std::sync::mpsc::{self, Receiver};

    pub fn size() -> Option<(u16, u16)> {
        if !std::io::stdout().is_terminal() {
            return None;
        }
        // SAFETY: `winsize` is plain data that the ioctl fills in.
        let mut size: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: TIOCGWINSZ writes one winsize through the pointer.
        let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
        (ok && size.ws_row > 0).then_some((size.ws_row, size.ws_col))
    }

    /// The terminal's settings before `start`, put back on drop.
    pub struct Raw(libc::termios);

    impl Drop for Raw {
        fn drop(&mut self) {
            // SAFETY: the settings read in `start`, written back to the same terminal.
            unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.0) };
        }
    }

    pub fn start() -> Option<(Raw, Receiver<u8>)> {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        // SAFETY: `termios` is plain data that tcgetattr fills in.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: reads the settings of stdin, a terminal.
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut saved) } != 0 {
            return None;
        }
        let mut raw = saved;
        // Keys one at a time, not echoed; Ctrl-C arrives as a key (so that the terminal is
        // put back before jobctl ends), not as SIGINT.
        raw.c_lflag &= !(libc::ICANON | libc::ECHO | libc::ISIG);
        raw.c_cc[libc::VMIN] = 1;
        raw.c_cc[libc::VTIME] = 0;
        // SAFETY: writes complete settings to stdin, a terminal.
        if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &raw) } != 0 {
            return None;
        }
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::Builder::new()
            .name("jobctl-keys".into())
            .spawn(move || {
                let mut stdin = std::io::stdin();
                let mut key = [0u8];
                while stdin.read_exact(&mut key).is_ok() && tx.send(key[0]).is_ok() {}
            });
        // Without the reader, the terminal goes back at once (the guard drops).
        let raw = Raw(saved);
        reader.ok()?;
        Some((raw, rx))
    }
}

#[cfg(not(unix))]
mod imp {
    use std::sync::mpsc::Receiver;

    pub struct Raw;

    pub fn size() -> Option<(u16, u16)> {
        None
    }

    pub fn start() -> Option<(Raw, Receiver<u8>)> {
        None
    }
}
