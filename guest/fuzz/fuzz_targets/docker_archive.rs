//! docker-archive files (`docker save` output, any shape): manifest.json,
//! the config, the layers, the made-up manifest: never a panic.
#![no_main]

use imo_guest::base::Bases;
use imo_guest::platform::Platform;
use imo_guest::plan::Plan;
use imo_guest::source::DockerArchiveSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("imo-fuzz-docker-{}", std::process::id()));
    std::fs::write(&path, data).expect("scratch file");
    if let Ok(source) = DockerArchiveSource::open(path.to_str().expect("utf-8"), None) {
        let _ = Plan::build(&Bases::none(), &source, true, &Platform::default());
    }
});
