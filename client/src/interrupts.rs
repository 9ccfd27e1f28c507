//! SIGINT and SIGTERM during `exec`: a CI cancelling the job. Caught from
//! before the mint on, so that a credential never outlives the job:
//!
//! - before the credential exists, trustpub-token stops at once (there is
//!   nothing to burn);
//! - once it exists, the signal is passed on to the command when it runs,
//!   or stops the command from being started; trustpub-token waits for the
//!   command, burns the credential and exits with 128 + the signal, as a
//!   shell reports a job ended by it.
//!
//! A signal sent to the whole process group (a terminal's Ctrl-C) reaches
//! the command twice, once directly and once passed on; upload tools stop
//! on either.
//!
//! Elsewhere than on Unix nothing is caught, and the command runs as is.

use std::io;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex, PoisonError};

#[cfg(unix)]
use signal_hook::consts::{SIGINT, SIGTERM};
#[cfg(unix)]
use signal_hook::iterator::{Handle, Signals};

/// What the signal thread needs to know.
#[derive(Default)]
struct State {
    /// The credential was minted: a signal must not end the process
    /// before it is burnt.
    minted: bool,
    /// The command's process, while it runs.
    child: Option<u32>,
    /// The first signal that came after the mint.
    signal: Option<i32>,
}

/// The signals caught, for as long as this value lives.
pub struct Interrupts {
    state: Arc<Mutex<State>>,
    #[cfg(unix)]
    handle: Handle,
    #[cfg(unix)]
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Interrupts {
    /// Catches nothing: no signals to catch.
    #[cfg(not(unix))]
    pub fn catch() -> io::Result<Self> {
        Ok(Interrupts {
            state: Arc::default(),
        })
    }

    /// Catches SIGINT and SIGTERM from now on.
    #[cfg(unix)]
    pub fn catch() -> io::Result<Self> {
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let handle = signals.handle();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let thread = std::thread::spawn(move || {
            for signal in signals.forever() {
                let mut state = shared.lock().unwrap_or_else(PoisonError::into_inner);
                if !state.minted {
                    eprintln!("trustpub-token: stopped by signal {signal} before the mint ended");
                    std::process::exit(128 + signal);
                }
                state.signal.get_or_insert(signal);
                if let Some(child) = state.child {
                    eprintln!("trustpub-token: passing signal {signal} on to the command");
                    pass_on(child, signal);
                }
            }
        });
        Ok(Interrupts {
            state,
            handle,
            thread: Some(thread),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The credential exists: from now on a signal waits for its burn.
    pub fn minted(&self) {
        self.state().minted = true;
    }

    /// The signal that came after the mint, if one did.
    pub fn received(&self) -> Option<i32> {
        self.state().signal
    }

    /// Starts `command` unless a signal came first (`None`), and passes
    /// it the signals that come while it runs, until [`Interrupts::ended`].
    pub fn spawn(&self, command: &mut Command) -> Option<io::Result<Child>> {
        let mut state = self.state();
        if state.signal.is_some() {
            return None;
        }
        let child = command.spawn();
        if let Ok(child) = &child {
            state.child = Some(child.id());
        }
        Some(child)
    }

    /// The command was waited for: its process id may name another process
    /// from now on.
    pub fn ended(&self) {
        self.state().child = None;
    }
}

#[cfg(unix)]
impl Drop for Interrupts {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(unix)]
fn pass_on(child: u32, signal: i32) {
    let Ok(pid) = libc::pid_t::try_from(child) else {
        return;
    };
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    unsafe {
        libc::kill(pid, signal);
    }
}
