//! Puff then huff gives back the exact bytes, for every compressor family
//! at hand: GNU gzip, pigz (including zopfli and independent blocks), zlib
//! (every level and strategy, sync and full flushes, multi-member files,
//! header fields, trailing bytes), miniz_oxide (flate2), klauspost/pgzip
//! (what containers/image writes: a fixture made by skopeo) and Go's
//! compress/gzip (a fixture made by `testdata/make-gostd`).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use proptest::prelude::*;

fn round_trip(gz: &[u8], what: &str) -> usize {
    let mut puffed = Vec::new();
    imo_puff::puff(gz, &mut puffed).unwrap_or_else(|e| panic!("{what}: puff: {e}"));
    let mut back = Vec::new();
    let n = imo_puff::huff(&puffed[..], &mut back).unwrap_or_else(|e| panic!("{what}: huff: {e}"));
    assert_eq!(n as usize, back.len());
    assert!(
        back == gz,
        "{what}: {} bytes in, {} back, first difference at {:?}",
        gz.len(),
        back.len(),
        gz.iter().zip(&back).position(|(a, b)| a != b)
    );
    // The reader form, read in small pieces, gives the same bytes.
    let mut huffer = imo_puff::Huffer::new(&puffed[..]);
    let (mut pieces, mut piece) = (Vec::new(), [0u8; 1000]);
    loop {
        let n = std::io::Read::read(&mut huffer, &mut piece).unwrap();
        if n == 0 {
            break;
        }
        pieces.extend_from_slice(&piece[..n]);
    }
    assert!(pieces == gz, "{what}: the reader form differs");
    // So does puffing's reader form, and taking it a step at a time.
    let mut puffer = imo_puff::Puffer::new(gz);
    let mut pieces = Vec::new();
    loop {
        let n = std::io::Read::read(&mut puffer, &mut piece).unwrap();
        if n == 0 {
            break;
        }
        pieces.extend_from_slice(&piece[..n]);
    }
    assert!(pieces == puffed, "{what}: the puffer's reader form differs");
    let (mut puffer, mut steps) = (imo_puff::Puffer::new(gz), Vec::new());
    while puffer.step_into(&mut steps).unwrap() {}
    assert!(steps == puffed, "{what}: the puffer's steps differ");
    halves_join(gz, &puffed, what);
    puffed.len()
}

/// Puffed in two halves, split where `find_block` says a block starts past
/// a third and past half of the file, `gz` gives `puffed`: the first half
/// has a block start exactly there. The number of splits found.
fn halves_join(gz: &[u8], puffed: &[u8], what: &str) -> usize {
    let mut found = 0;
    for from in [gz.len() / 3, gz.len() / 2] {
        let Some(at) = imo_puff::find_block(gz, from as u64 * 8, gz.len()) else {
            continue;
        };
        found += 1;
        let (mut first, mut puffer) = (Vec::new(), imo_puff::Puffer::new(gz));
        while puffer.block_start().is_none_or(|b| b < at) {
            assert!(puffer.step_into(&mut first).unwrap(), "{what}: ended");
        }
        assert_eq!(puffer.block_start(), Some(at), "{what}: no block at {at}");
        let start = &gz[(at / 8) as usize..];
        let mut second = imo_puff::Puffer::from_block(start, (at % 8) as u32);
        while second.step_into(&mut first).unwrap() {}
        assert!(first == puffed, "{what}: halves split at bit {at} differ");
    }
    found
}

/// ~600 KB like a layer's tar: text, runs, zeros, incompressible stretches.
fn sample() -> Vec<u8> {
    let mut out = Vec::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let words = [
        "lib", "usr", "share", "doc", "config", "kernel", "module", "=", "\n", "path",
    ];
    while out.len() < 600_000 {
        match next() % 5 {
            0 => {
                for _ in 0..400 {
                    out.extend_from_slice(words[(next() % 10) as usize].as_bytes());
                    out.push(b' ');
                }
            }
            1 => out.extend(std::iter::repeat_n(0u8, (next() % 5000) as usize)),
            2 => out.extend((0..(next() % 3000)).map(|_| next() as u8)),
            3 => out.extend(std::iter::repeat_n(b'a', 300 + (next() % 700) as usize)),
            _ => {
                let start = out.len().saturating_sub(20_000);
                let end = (start + 2000).min(out.len());
                let copy = out[start..end].to_vec();
                out.extend(copy);
            }
        }
    }
    out
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn run(tool: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "{tool} {args:?}");
    out.stdout
}

#[test]
fn gnu_gzip() {
    assert!(have("gzip"), "gzip is needed (scripts/setup installs it)");
    let data = sample();
    for level in ["-1", "-6", "-9"] {
        let gz = run("gzip", &["-c", "-n", level], &data);
        round_trip(&gz, level);
        let mut puffed = Vec::new();
        imo_puff::puff(&gz[..], &mut puffed).unwrap();
        assert_eq!(halves_join(&gz, &puffed, level), 2, "{level}: blocks found");
    }
    // With a file name and time in the header.
    let dir = std::env::temp_dir().join(format!("imo-puff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("layer.tar");
    std::fs::write(&file, &data).unwrap();
    let out = Command::new("gzip")
        .args(["-c", "-N"])
        .arg(&file)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.stdout[3] & 8, 8, "FNAME set");
    round_trip(&out.stdout, "gzip with a name");
}

/// Data whose literal codes reach deflate's 15 bits: 127 byte values,
/// at random, take all but 1/128 of the code space (7 bits each); the
/// other 129 come in clusters of 60 now and then, so many 13-15-bit codes
/// follow one another and fill the huffer's 64-bit buffer.
fn skewed() -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = Vec::new();
    while out.len() < 400_000 {
        out.extend((0..16_000).map(|_| (next() % 127) as u8));
        out.extend((0..60).map(|_| (127 + next() % 129) as u8));
    }
    out
}

#[test]
fn gnu_gzip_with_the_longest_literal_codes() {
    let data = skewed();
    for level in ["-1", "-6", "-9"] {
        round_trip(&run("gzip", &["-c", "-n", level], &data), level);
    }
}

#[test]
fn pigz() {
    assert!(have("pigz"), "pigz is needed (scripts/setup installs it)");
    let data = sample();
    for args in [
        &["-c", "-1"][..],
        &["-c", "-6", "-p", "2", "-b", "32"],
        &["-c", "-9", "-i", "-b", "64"],
        &["-c", "--rsyncable"],
        &["-c", "-11", "-I", "3"],
    ] {
        round_trip(&run("pigz", args, &data), &format!("pigz {args:?}"));
    }
}

#[test]
fn zlib_levels_strategies_flushes_and_headers() {
    // Python's zlib is the zlib library itself.
    let script = r#"
import sys, zlib, struct
data = sys.stdin.buffer.read()
out = []
for level in range(10):
    for strategy in (zlib.Z_DEFAULT_STRATEGY, zlib.Z_FILTERED, zlib.Z_HUFFMAN_ONLY, zlib.Z_RLE, zlib.Z_FIXED):
        c = zlib.compressobj(level, zlib.DEFLATED, 31, 9, strategy)
        out.append(c.compress(data) + c.flush())
# Sync and full flushes mid-stream (empty stored blocks), and a memLevel of 1.
c = zlib.compressobj(6, zlib.DEFLATED, 31, 1)
parts = []
for i in range(0, len(data), 100000):
    parts.append(c.compress(data[i:i+100000]))
    parts.append(c.flush(zlib.Z_SYNC_FLUSH if i % 200000 else zlib.Z_FULL_FLUSH))
parts.append(c.flush())
out.append(b''.join(parts))
# Two members, then trailing zeros.
a = zlib.compressobj(9, zlib.DEFLATED, 31); b = zlib.compressobj(1, zlib.DEFLATED, 31)
out.append(a.compress(data[:300000]) + a.flush() + b.compress(data[300000:]) + b.flush() + bytes(1000))
# Every header field: FTEXT, FHCRC, FEXTRA, FNAME, FCOMMENT, around raw deflate.
raw = zlib.compressobj(6, zlib.DEFLATED, -15)
body = raw.compress(data) + raw.flush()
head = b'\x1f\x8b\x08' + bytes([1|2|4|8|16]) + struct.pack('<I', 1234567) + b'\x02\x03'
head += struct.pack('<H', 6) + b'AB\x02\x00xy' + b'layer.tar\x00' + b'a comment\x00'
head += struct.pack('<H', zlib.crc32(head) & 0xffff)
out.append(head + body + struct.pack('<II', zlib.crc32(data), len(data) & 0xffffffff))
for o in out:
    sys.stdout.buffer.write(struct.pack('<I', len(o)) + o)
"#;
    let all = run("python3", &["-c", script], &sample());
    let mut rest = &all[..];
    let mut count = 0;
    while !rest.is_empty() {
        let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        round_trip(&rest[4..4 + len], &format!("zlib case {count}"));
        rest = &rest[4 + len..];
        count += 1;
    }
    assert_eq!(count, 53);
}

#[test]
fn miniz_oxide() {
    let data = sample();
    for level in 0..=9 {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        e.write_all(&data).unwrap();
        round_trip(&e.finish().unwrap(), &format!("flate2 level {level}"));
    }
    let mut e = flate2::GzBuilder::new()
        .filename("x.tar")
        .comment("c")
        .extra(vec![1, 2, 3])
        .write(Vec::new(), flate2::Compression::best());
    e.write_all(&data).unwrap();
    round_trip(&e.finish().unwrap(), "flate2 with header fields");
}

#[test]
fn pgzip_as_containers_image_writes_it() {
    let gz =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/pgzip.tar.gz")).unwrap();
    round_trip(&gz, "pgzip");
}

#[test]
fn go_standard_library_gzip() {
    let gz =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/gostd.tar.gz")).unwrap();
    round_trip(&gz, "Go compress/gzip");
}

/// FNV-1a, 64 bits: enough to notice a change.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn the_token_form_does_not_change() {
    // Archives already made hold deltas against this exact form of their
    // base layers: a faster puff must give the same bytes.
    for (file, len, hash) in [
        ("pgzip.tar.gz", 366_653, 0xa975_4c0b_077f_49ed),
        ("gostd.tar.gz", 113_335, 0x6a07_54fc_74e0_f76e),
    ] {
        let gz = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("testdata")
                .join(file),
        )
        .unwrap();
        let mut puffed = Vec::new();
        imo_puff::puff(&gz[..], &mut puffed).unwrap();
        assert_eq!((puffed.len(), fnv1a(&puffed)), (len, hash), "{file}");
    }
}

#[test]
fn not_gzip_is_refused() {
    for bad in [
        &b""[..],
        b"plain text",
        &[0x1f, 0x8b, 7, 0, 0, 0, 0, 0, 0, 0],
        &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0, 0x07],
    ] {
        assert!(imo_puff::puff(bad, Vec::new()).is_err(), "{bad:?}");
    }
    // A truncated stream.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&sample()).unwrap();
    let gz = e.finish().unwrap();
    assert!(imo_puff::puff(&gz[..gz.len() / 2], Vec::new()).is_err());
    // A damaged puffed stream is refused or gives other bytes; never a panic.
    let mut puffed = Vec::new();
    imo_puff::puff(&gz[..], &mut puffed).unwrap();
    for at in [8, 9, 20, puffed.len() / 2, puffed.len() - 3] {
        let mut bad = puffed.clone();
        bad[at] ^= 0x5a;
        match imo_puff::huff(&bad[..], Vec::new()) {
            Err(_) => {}
            Ok(_) => {
                let mut out = Vec::new();
                imo_puff::huff(&bad[..], &mut out).unwrap();
                assert_ne!(out, gz, "a change at {at} made no difference");
            }
        }
    }
}

#[test]
fn a_read_fills_its_buffer_across_steps_and_keeps_a_late_error() {
    // pigz -i: independent blocks of 32 KiB, so many small steps.
    let gz = run("pigz", &["-c", "-6", "-i", "-b", "32"], &sample());
    let mut puffed = Vec::new();
    imo_puff::puff(&gz[..], &mut puffed).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let n = std::io::Read::read(&mut imo_puff::Huffer::new(&puffed[..]), &mut buf).unwrap();
    assert_eq!(&buf[..n], &gz[..], "one read gives the whole file");
    let n = std::io::Read::read(&mut imo_puff::Puffer::new(&gz[..]), &mut buf).unwrap();
    assert_eq!(
        &buf[..n],
        &puffed[..],
        "one read gives the whole token form"
    );
    // Cut short: the first read gives what came before the cut, the next
    // the error, never a short file taken for a whole one.
    let cut = &puffed[..puffed.len() / 2];
    let mut huffer = imo_puff::Huffer::new(cut);
    let n = std::io::Read::read(&mut huffer, &mut buf).unwrap();
    assert!(
        n > 0 && gz.starts_with(&buf[..n]),
        "{n} bytes before the cut"
    );
    assert!(std::io::Read::read(&mut huffer, &mut buf).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_input_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2000), skip in 0u32..8) {
        let _ = imo_puff::puff(&data[..], Vec::new());
        // Nor a search for a block in it, nor puffing from anywhere.
        let _ = imo_puff::find_block(&data, u64::from(skip), data.len());
        let mut from_block = imo_puff::Puffer::from_block(&data[..], skip);
        let _ = std::io::Read::read_to_end(&mut from_block, &mut Vec::new());
        let mut framed = imo_puff::MAGIC.to_vec();
        framed.extend_from_slice(&data);
        let _ = imo_puff::huff(&framed[..], Vec::new());
    }

    #[test]
    fn any_content_round_trips(data in proptest::collection::vec(any::<u8>(), 0..5000), level in 0u32..10) {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        e.write_all(&data).unwrap();
        round_trip(&e.finish().unwrap(), "proptest");
    }
}
