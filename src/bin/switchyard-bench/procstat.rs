//! What the generator reads from /proc: CPU time of the router and of itself
//! (utime + stime from `/proc/<pid>/stat`, in clock ticks), resident memory (`VmRSS`
//! from `/proc/<pid>/status`) and its own open-files limit. `CpuWindow` samples both
//! processes at the start and end of a measurement and decides whether the generator,
//! not the router, was the bottleneck.

use std::sync::OnceLock;
use std::time::Instant;

use serde_json::{json, Value as Json};

/// Clock ticks per second: `getconf CLK_TCK`, run once; 100 (Linux's value on every
/// common architecture) if that fails.
pub fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// Fields of `/proc/<pid>/stat` after the command name (which may contain spaces and
/// parentheses): index 0 is field 3 (state), so field N is at index N - 3.
fn stat_fields(pid: &str) -> Result<Vec<u64>, String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    let tail = text.rsplit_once(')').map(|(_, t)| t).ok_or_else(|| format!("/proc/{pid}/stat: unexpected format"))?;
    Ok(tail.split_whitespace().map(|f| f.parse::<u64>().unwrap_or(0)).collect())
}

/// utime + stime of a process (all its threads), in seconds. `pid` may be `self`.
pub fn cpu_seconds(pid: &str) -> Result<f64, String> {
    let f = stat_fields(pid)?;
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Ok(ticks as f64 / clock_ticks())
}

/// utime + stime, in seconds, summed over every process whose command name
/// (`/proc/<pid>/comm`) is `name` (e.g. `postgres`: the server and its backends). A
/// process that ends between two readings takes its time with it, so the difference of
/// two readings is a lower bound.
pub fn cpu_seconds_named(name: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0.0 };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().filter(|s| s.bytes().all(|b| b.is_ascii_digit())).map(str::to_owned))
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == name))
        .filter_map(|pid| cpu_seconds(&pid).ok())
        .sum()
}

/// Resident set size in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: &str) -> Result<u64, String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("/proc/{pid}/status: no VmRSS"))
}

/// The soft limit on open files of this process (`/proc/self/limits`).
pub fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Busy time of the whole machine (all CPUs: user, nice, system, irq, softirq, steal
/// from the first line of `/proc/stat`), in seconds.
pub fn machine_busy_seconds() -> f64 {
    let Ok(text) = std::fs::read_to_string("/proc/stat") else { return 0.0 };
    let Some(line) = text.lines().next() else { return 0.0 };
    let f: Vec<u64> = line.split_whitespace().skip(1).map(|x| x.parse().unwrap_or(0)).collect();
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    (at(0) + at(1) + at(2) + at(5) + at(6) + at(7)) as f64 / clock_ticks()
}

/// Cores this process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// CPU use of the router and the generator over one measurement.
pub struct CpuWindow {
    start: Instant,
    router_pid: Option<u32>,
    router0: Option<f64>,
    gen0: f64,
    machine0: f64,
}

#[derive(Debug, Clone, Default)]
pub struct CpuReport {
    pub wall_s: f64,
    pub router_cpu_s: Option<f64>,
    pub generator_cpu_s: f64,
    pub cores: usize,
    /// CPU used by every other process on the machine during the window, in seconds
    /// (machine busy time minus router and generator); a benchmark wants this near 0.
    pub other_cpu_s: f64,
    /// Set when the router process could not be read at the end (it died).
    pub router_error: Option<String>,
}

impl CpuWindow {
    pub fn start(router_pid: Option<u32>) -> Result<CpuWindow, String> {
        let router0 = match router_pid {
            Some(pid) => Some(cpu_seconds(&pid.to_string()).map_err(|e| format!("--router-pid {pid}: {e}"))?),
            None => None,
        };
        Ok(CpuWindow {
            start: Instant::now(),
            router_pid,
            router0,
            gen0: cpu_seconds("self").unwrap_or(0.0),
            machine0: machine_busy_seconds(),
        })
    }

    /// Ends the window. `extra_generator_cpu_s` adds CPU of helper processes.
    pub fn finish(self, extra_generator_cpu_s: f64) -> CpuReport {
        let wall_s = self.start.elapsed().as_secs_f64();
        let generator_cpu_s = cpu_seconds("self").unwrap_or(0.0) - self.gen0 + extra_generator_cpu_s;
        let (router_cpu_s, router_error) = match (self.router_pid, self.router0) {
            (Some(pid), Some(r0)) => match cpu_seconds(&pid.to_string()) {
                Ok(r1) => (Some(r1 - r0), None),
                Err(e) => (None, Some(format!("router process {pid} gone: {e}"))),
            },
            _ => (None, None),
        };
        let machine = machine_busy_seconds() - self.machine0;
        let other_cpu_s = match router_cpu_s {
            Some(r) => (machine - r - generator_cpu_s).max(0.0),
            None => 0.0,
        };
        CpuReport { wall_s, router_cpu_s, generator_cpu_s, cores: cores(), other_cpu_s, router_error }
    }
}

impl CpuReport {
    pub fn router_cores(&self) -> Option<f64> {
        self.router_cpu_s.map(|c| c / self.wall_s.max(1e-9))
    }

    pub fn generator_cores(&self) -> f64 {
        self.generator_cpu_s / self.wall_s.max(1e-9)
    }

    /// The generator was the bottleneck: it used at least 90 % of the cores left to it
    /// (all cores minus what the router used) while the router stayed below 90 % of one
    /// core, so the router was waiting for work rather than saturated.
    /// Unknown (false) without a router PID.
    pub fn generator_bound(&self) -> bool {
        match self.router_cores() {
            Some(r) => {
                let left = (self.cores as f64 - r).max(0.1);
                self.generator_cores() >= 0.9 * left && r < 0.9
            }
            None => false,
        }
    }

    /// Router and generator together kept at least 90 % of all cores busy: the figures
    /// are those of a full machine, where the two compete for CPU.
    pub fn machine_saturated(&self) -> bool {
        self.router_cores().map(|r| r + self.generator_cores() >= 0.9 * self.cores as f64).unwrap_or(false)
    }

    /// Other processes used more than a fifth of a core: the machine was not quiet and
    /// the figures are suspect.
    pub fn machine_not_quiet(&self) -> bool {
        self.router_cpu_s.is_some() && self.other_cpu_s / self.wall_s.max(1e-9) > 0.2
    }

    /// `work` (events, calls) per router CPU-second.
    pub fn per_router_cpu_s(&self, work: u64) -> Option<f64> {
        self.router_cpu_s.filter(|c| *c > 0.0).map(|c| work as f64 / c)
    }

    pub fn to_json(&self) -> Vec<(String, Json)> {
        let r2 = |x: f64| (x * 1000.0).round() / 1000.0;
        vec![
            ("wall_s".into(), json!(r2(self.wall_s))),
            ("router_cpu_s".into(), json!(self.router_cpu_s.map(r2))),
            ("router_cores".into(), json!(self.router_cores().map(r2))),
            ("generator_cpu_s".into(), json!(r2(self.generator_cpu_s))),
            ("generator_cores".into(), json!(r2(self.generator_cores()))),
            ("cores".into(), json!(self.cores)),
            ("clock_ticks_per_s".into(), json!(clock_ticks())),
            ("generator_bound".into(), json!(self.generator_bound())),
            ("machine_saturated".into(), json!(self.machine_saturated())),
            ("other_cores".into(), json!(r2(self.other_cpu_s / self.wall_s.max(1e-9)))),
            ("machine_not_quiet".into(), json!(self.machine_not_quiet())),
        ]
    }

    pub fn human(&self) -> String {
        let router = match self.router_cores() {
            Some(r) => format!("router {:.2} CPU-s ({:.2} cores)", self.router_cpu_s.unwrap_or(0.0), r),
            None => "router CPU unknown (no --router-pid)".to_owned(),
        };
        let mut s = format!("{router}, generator {:.2} cores of {}", self.generator_cores(), self.cores);
        if self.machine_not_quiet() {
            s.push_str(&format!(
                " — MACHINE NOT QUIET: other processes used {:.2} cores",
                self.other_cpu_s / self.wall_s.max(1e-9)
            ));
        }
        if self.generator_bound() {
            s.push_str(" — GENERATOR-BOUND: the generator, not the router, limited this run");
        } else if self.machine_saturated() {
            s.push_str(" (machine saturated)");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_proc_files() {
        assert!(cpu_seconds("self").unwrap() >= 0.0);
        assert!(rss_kib("self").unwrap() > 0);
        assert!(open_files_limit().unwrap() > 0);
    }

    #[test]
    fn bottleneck_rule() {
        let r = |router: f64, gen: f64| CpuReport { wall_s: 1.0, router_cpu_s: Some(router), generator_cpu_s: gen, cores: 2, other_cpu_s: 0.0, router_error: None };
        assert!(r(0.5, 1.4).generator_bound());
        assert!(!r(1.0, 1.0).generator_bound());
        assert!(r(1.0, 1.0).machine_saturated());
        assert!(!r(0.3, 0.5).generator_bound());
    }
}
