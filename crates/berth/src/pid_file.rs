//! `<data dir>/berth-dev.pid`: which process runs `berth dev` on a data dir, so
//! `berth dev --stop` stops that one and no other user's or data dir's berth.
//!
//! The running berth holds an exclusive `flock` on the file for as long as it runs: the
//! kernel drops the lock when the process dies, however it dies, so a pid file left by a
//! killed berth is told from a live one without trusting its pid (which may be reused).

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rustix::fs::{flock, FlockOperation};
use rustix::process::{kill_process, Pid, Signal};

/// How long `--stop` waits for berth to exit (its own shutdown takes 5 s at most).
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("berth-dev.pid")
}

/// The pid file of the running `berth dev`, locked; removed when dropped.
pub struct PidFile {
    path: PathBuf,
    _file: File,
}

impl PidFile {
    /// Takes the data dir for this process: refused while another berth holds it; a
    /// file a killed berth left is replaced (`Ok` says whose it was).
    pub fn acquire(data_dir: &Path) -> anyhow::Result<(PidFile, Option<u32>)> {
        let path = path(data_dir);
        let mut file = open(&path)?;
        // A berth that stops removes the file, then lets go of it: the lock may be
        // one on a file no longer there, so it counts only while the path is its file.
        while !try_lock(&file)? || !is_at(&file, &path) {
            if !is_at(&file, &path) {
                file = open(&path)?;
                continue;
            }
            let holder = read_pid_of_holder(&mut file)
                .map(|pid| format!(" (pid {pid})"))
                .unwrap_or_default();
            bail!(
                "another berth dev{holder} is running on the data directory {dir}; stop it with `berth dev --stop --data-dir {dir}`, or give this one another --data-dir",
                dir = data_dir.display()
            );
        }
        let stale = read_pid(&mut file);
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok((PidFile { path, _file: file }, stale))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Removed while still locked: no other berth can have taken it in between.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What `berth dev --stop` found and did.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// SIGTERM sent and the process exited.
    Stopped(u32),
    /// No pid file, or one whose process is gone.
    NoneRunning { stale: Option<u32> },
}

/// Sends SIGTERM to the `berth dev` of `data_dir` and waits until it has exited.
pub fn stop(data_dir: &Path) -> anyhow::Result<Stopped> {
    let path = path(data_dir);
    let mut file = match File::options().read(true).write(true).open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Stopped::NoneRunning { stale: None })
        }
        Err(error) => return Err(error).with_context(|| format!("opening {}", path.display())),
    };
    if try_lock(&file)? {
        // No one holds it: the berth that wrote it is gone. Tidy up after it.
        let stale = read_pid(&mut file);
        let _ = std::fs::remove_file(&path);
        return Ok(Stopped::NoneRunning { stale });
    }
    let pid = read_pid_of_holder(&mut file)
        .with_context(|| format!("{} names no process", path.display()))?;
    let raw = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .with_context(|| format!("{} names no process ({pid})", path.display()))?;
    kill_process(raw, Signal::TERM)
        .with_context(|| format!("cannot send SIGTERM to berth dev (pid {pid})"))?;
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        // The lock goes when berth's file closes; the process a moment later.
        if try_lock(&file)? && !is_running(pid) {
            return Ok(Stopped::Stopped(pid));
        }
        if Instant::now() >= deadline {
            bail!(
                "berth dev (pid {pid}) got SIGTERM but is still running after {} s",
                STOP_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn open(path: &Path) -> anyhow::Result<File> {
    File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

/// Whether `path` names the very file `file` has open.
fn is_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

/// `true` when this process now holds the lock, `false` when another one does.
fn try_lock(file: &File) -> anyhow::Result<bool> {
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(error) => Err(std::io::Error::from(error)).context("locking the pid file"),
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// The holder writes its pid right after it takes the lock: give it that moment.
fn read_pid_of_holder(file: &mut File) -> Option<u32> {
    for _ in 0..50 {
        if let Some(pid) = read_pid(file) {
            return Some(pid);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Whether the process runs (a zombie, exited but not yet reaped by its parent, does not).
fn is_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_per_data_dir_and_the_file_goes_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let (held, stale) = PidFile::acquire(dir.path()).unwrap();
        assert_eq!(stale, None);
        let written = std::fs::read_to_string(path(dir.path())).unwrap();
        assert_eq!(written.trim(), std::process::id().to_string());
        // flock locks belong to the open file: a second open is a second holder.
        let refused = PidFile::acquire(dir.path()).err().unwrap().to_string();
        assert!(
            refused.contains(&format!("(pid {})", std::process::id())),
            "{refused}"
        );
        assert!(refused.contains("berth dev --stop --data-dir"), "{refused}");
        drop(held);
        assert!(!path(dir.path()).exists());
    }

    #[test]
    fn a_file_no_one_holds_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path(dir.path()), "999999999\n").unwrap();
        assert_eq!(
            stop(dir.path()).unwrap(),
            Stopped::NoneRunning {
                stale: Some(999_999_999)
            }
        );
        assert!(!path(dir.path()).exists(), "the stale file is removed");
        assert_eq!(
            stop(dir.path()).unwrap(),
            Stopped::NoneRunning { stale: None }
        );
        std::fs::write(path(dir.path()), "4242\n").unwrap();
        let (_held, stale) = PidFile::acquire(dir.path()).unwrap();
        assert_eq!(stale, Some(4242));
    }

    #[test]
    fn a_running_process_is_told_from_a_gone_one() {
        assert!(is_running(std::process::id()));
        assert!(!is_running(u32::MAX));
    }
}
