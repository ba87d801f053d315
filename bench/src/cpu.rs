//! What a process costs, read from `/proc`: CPU time (user + system, all threads) and resident
//! memory. CPU time rather than wall time: the benchmark machine is shared.

use std::time::Duration;

/// Clock ticks per second of `/proc/PID/stat` (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(t).ok().filter(|t| *t > 0).unwrap_or(100)
}

/// User + system CPU time of every thread of `pid` so far (`/proc/PID/stat` fields 14 and 15).
pub fn cpu_time(pid: u32) -> std::io::Result<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&text)
        .map(|ticks| Duration::from_secs_f64(ticks as f64 / ticks_per_second() as f64))
        .ok_or_else(|| std::io::Error::other(format!("/proc/{pid}/stat: unexpected format")))
}

/// utime + stime, in ticks, from the text of `/proc/PID/stat` (the command name may hold
/// spaces and parentheses: fields are counted after the last `)`).
fn parse_stat(text: &str) -> Option<u64> {
    let (_, rest) = text.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    // After ")": state is field 3, so utime (14) is the 12th and stime (15) the 13th.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `/proc/PID/status` value in kB (`VmRSS`, `VmHWM`).
pub fn status_kb(pid: u32, key: &str) -> std::io::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    text.lines()
        .find_map(|l| {
            let v = l.strip_prefix(key)?.strip_prefix(':')?;
            v.split_whitespace().next()?.parse().ok()
        })
        .ok_or_else(|| std::io::Error::other(format!("/proc/{pid}/status: no {key}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 3 0";
        assert_eq!(parse_stat(line), Some(281));
    }

    #[test]
    fn this_process_has_spent_some_cpu_and_has_a_resident_set() {
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        let me = std::process::id();
        assert!(cpu_time(me).expect("own stat") > Duration::ZERO);
        assert!(status_kb(me, "VmRSS").expect("own status") > 0);
    }
}
