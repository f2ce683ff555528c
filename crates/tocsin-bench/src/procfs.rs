//! Resident memory and CPU time of a process (and its descendants), from /proc.

use std::time::Instant;

use anyhow::{Context, Result};

/// The kernel's clock ticks per second for /proc's CPU times.
fn ticks_per_second() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |ticks| ticks as f64)
}

/// `VmRSS` of one process, in bytes.
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("process {pid} is gone (reading /proc/{pid}/status)"))?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .with_context(|| format!("/proc/{pid}/status has no VmRSS line"))?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .with_context(|| format!("unreadable VmRSS line: {line}"))?;
    Ok(kib * 1024)
}

/// User + system CPU seconds one process has used so far.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("process {pid} is gone (reading /proc/{pid}/stat)"))?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("unreadable /proc/{pid}/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3 of stat(5), so utime (14) and stime (15) are 11 and 12.
    let ticks = |index: usize| -> Result<f64> {
        fields
            .get(index)
            .and_then(|field| field.parse::<u64>().ok())
            .map(|ticks| ticks as f64)
            .with_context(|| format!("/proc/{pid}/stat has no field {}", index + 3))
    };
    Ok((ticks(11)? + ticks(12)?) / ticks_per_second())
}

/// The parent pid of a process, if it still exists.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// `pid` and every live descendant of it.
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut all: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if let Some(parent) = parent_of(child) {
                all.push((child, parent));
            }
        }
    }
    let mut tree = vec![pid];
    let mut index = 0;
    while index < tree.len() {
        let parent = tree[index];
        tree.extend(all.iter().filter(|(_, p)| *p == parent).map(|(c, _)| *c));
        index += 1;
    }
    tree
}

/// One reading of a process tree: memory now and CPU used so far.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When it was taken.
    pub at: Instant,
    /// Sum of `VmRSS` over the tree, bytes.
    pub rss_bytes: u64,
    /// Sum of user + system CPU over the tree, seconds.
    pub cpu_seconds: f64,
}

impl Sample {
    /// Reads `pid` alone.
    pub fn of(pid: u32) -> Result<Sample> {
        Ok(Sample {
            at: Instant::now(),
            rss_bytes: rss_bytes(pid)?,
            cpu_seconds: cpu_seconds(pid)?,
        })
    }

    /// Reads several processes as one (the nodes of a cluster).
    pub fn of_all(pids: &[u32]) -> Result<Sample> {
        let mut sample = Sample {
            at: Instant::now(),
            rss_bytes: 0,
            cpu_seconds: 0.0,
        };
        for &pid in pids {
            sample.rss_bytes += rss_bytes(pid)?;
            sample.cpu_seconds += cpu_seconds(pid)?;
        }
        Ok(sample)
    }

    /// Reads `pid` and its descendants (processes that vanish meanwhile are skipped).
    pub fn of_tree(pid: u32) -> Result<Sample> {
        let mut sample = Sample::of(pid)?;
        for child in process_tree(pid).into_iter().skip(1) {
            if let (Ok(rss), Ok(cpu)) = (rss_bytes(child), cpu_seconds(child)) {
                sample.rss_bytes += rss;
                sample.cpu_seconds += cpu;
            }
        }
        Ok(sample)
    }

    /// CPU used between `self` and a later sample, as a fraction of one core.
    pub fn cpu_share_until(&self, later: &Sample) -> f64 {
        let wall = later.at.duration_since(self.at).as_secs_f64();
        if wall <= 0.0 {
            return 0.0;
        }
        (later.cpu_seconds - self.cpu_seconds) / wall
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_and_cpu() {
        let me = std::process::id();
        let sample = Sample::of_tree(me).expect("our own /proc entry is readable");
        assert!(sample.rss_bytes > 1024 * 1024, "{sample:?}");
        assert!(sample.cpu_seconds >= 0.0);
        assert_eq!(process_tree(me)[0], me);
    }
}
