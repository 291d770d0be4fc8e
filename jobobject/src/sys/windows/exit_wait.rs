//! An async wait for a process to exit: `RegisterWaitForSingleObject`, as tokio's own `Child`
//! does. The system's wait threads watch up to 63 handles each; the callback only wakes the
//! task.

use std::ffi::c_void;
use std::future::Future;
use std::io;
use std::os::windows::io::{AsRawHandle, BorrowedHandle};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Threading::{
    INFINITE, RegisterWaitForSingleObject, UnregisterWaitEx, WT_EXECUTEONLYONCE,
};

/// What the callback and the future share.
#[derive(Default)]
struct Signal {
    exited: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

/// Resolves when the process of a handle has exited.
pub(crate) struct Exited<'a> {
    process: BorrowedHandle<'a>,
    signal: Arc<Signal>,
    /// The registered wait, once polled.
    wait: Option<HANDLE>,
}

// SAFETY: the wait handle is only passed to UnregisterWaitEx, from any thread.
unsafe impl Send for Exited<'_> {}

/// The exit of `process` (a handle with SYNCHRONIZE), as a future.
pub(crate) fn exited(process: BorrowedHandle<'_>) -> Exited<'_> {
    Exited {
        process,
        signal: Arc::default(),
        wait: None,
    }
}

unsafe extern "system" fn on_exit(context: *mut c_void, _timed_out: bool) {
    // SAFETY: `context` is the `Signal` the future keeps alive until the wait is unregistered
    // (UnregisterWaitEx waits for a running callback).
    let signal = unsafe { &*(context as *const Signal) };
    signal.exited.store(true, Ordering::Release);
    if let Some(waker) = signal
        .waker
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
    {
        waker.wake();
    }
}

impl Future for Exited<'_> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        *this
            .signal
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
        if this.signal.exited.load(Ordering::Acquire) {
            return Poll::Ready(Ok(()));
        }
        if this.wait.is_none() {
            let mut wait: HANDLE = std::ptr::null_mut();
            // SAFETY: `wait` is writable; the process handle outlives the future; the context
            // stays valid until the wait is unregistered in `drop`.
            let registered = unsafe {
                RegisterWaitForSingleObject(
                    &mut wait,
                    this.process.as_raw_handle(),
                    Some(on_exit),
                    Arc::as_ptr(&this.signal).cast(),
                    INFINITE,
                    WT_EXECUTEONLYONCE,
                )
            };
            if registered == 0 {
                return Poll::Ready(Err(io::Error::last_os_error()));
            }
            this.wait = Some(wait);
        }
        Poll::Pending
    }
}

impl Drop for Exited<'_> {
    fn drop(&mut self) {
        if let Some(wait) = self.wait.take() {
            // SAFETY: `wait` is our registered wait; INVALID_HANDLE_VALUE waits for a callback
            // that is running (it only stores a flag and wakes a task), so `signal` outlives
            // every use of it.
            unsafe { UnregisterWaitEx(wait, INVALID_HANDLE_VALUE) };
        }
    }
}
