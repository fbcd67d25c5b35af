//! What the process uses of the machine: resident memory (from `/proc`), and GPU memory
//! through NVML (`nvml-wrapper` loads the driver's library at run time; without a GPU or
//! driver there is simply no GPU, which is not an error).

use std::sync::OnceLock;

use nvml_wrapper::Nvml;

/// Resident set size of this process in bytes (Linux); `None` elsewhere.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

fn page_size() -> u64 {
    // Every Linux this runs on (x86_64, aarch64 with 4 KiB pages) uses 4096.
    4096
}

fn nvml() -> Option<&'static Nvml> {
    static NVML: OnceLock<Option<Nvml>> = OnceLock::new();
    NVML.get_or_init(|| Nvml::init().ok()).as_ref()
}

/// The first GPU: its name and (used, total) memory in bytes; `None` without one.
pub fn gpu() -> Option<GpuInfo> {
    let device = nvml()?.device_by_index(0).ok()?;
    let memory = device.memory_info().ok()?;
    Some(GpuInfo {
        name: device.name().unwrap_or_else(|_| "NVIDIA GPU".into()),
        used_bytes: memory.used,
        total_bytes: memory.total,
        free_bytes: memory.free,
    })
}

#[derive(Debug, Clone)]
pub struct GpuInfo {
    pub name: String,
    pub used_bytes: u64,
    pub total_bytes: u64,
    pub free_bytes: u64,
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_has_some_resident_memory() {
        let rss = super::rss_bytes().unwrap_or(0);
        assert!(rss > 1 << 20, "{rss}");
    }
}
