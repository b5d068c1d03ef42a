//! OCI archives from untrusted media: the tar index, index.json and the
//! manifest walk of every image (as inspect does): never a panic, never a
//! read outside the file.
#![no_main]

use imo_guest::archive::reader::ArchiveReader;
use imo_guest::base::Bases;
use imo_guest::platform::Platform;
use imo_guest::plan::Plan;
use imo_guest::source::LayoutSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("imo-fuzz-archive-{}", std::process::id()));
    std::fs::write(&path, data).expect("scratch file");
    let path = path.to_str().expect("utf-8");
    if let Ok(reader) = ArchiveReader::open(path) {
        let source = LayoutSource::new(reader, "fuzz".into(), None);
        if let Ok(plan) = Plan::build(&Bases::none(), &source, true, &Platform::default()) {
            let _ = plan.index_json(plan.tag.as_deref());
            let _ = plan.archive_size();
        }
        let mut bases = Bases::none();
        let _ = bases.add(&source);
    }
});
