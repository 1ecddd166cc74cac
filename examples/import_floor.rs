//! A floor for a bulk import on this machine: what loading a JSON Lines file costs when each
//! call is parsed once, encoded once and written once, durably, into redb, with no index, no
//! look-up of stored calls and no merge. An import built the way `callstore import` is (one
//! thread parsing into `Call`s, one writing) does all of this and more, so this bounds what a
//! change of what `Store::import` writes and indexes can reach; going further means making
//! this work itself cheaper (see ARCHITECTURE.md, "A floor: each call written once").
//!
//! ```text
//! cargo run --release --example import_floor -- CALLS.jsonl OUT.redb [--chunk N] [--parse-only]
//! ```
//!
//! - The main thread reads and parses lines (`Call::from_json`, as `callstore import` does) into
//!   chunks of `--chunk` calls (default 262,144: `DEFAULT_IMPORT_SEGMENT_ROWS`).
//! - A writing thread sorts each chunk by (AccountSid, `Date_Start`, CallSid), encodes its calls
//!   one after the other into blocks of up to 16 KiB (bincode: a stand-in for the store's
//!   codec; the file written is not a callstore store), inserts the blocks in key order and
//!   commits each chunk durably, as an import commits each segment.
//! - `--parse-only` drops the chunks instead of writing them: the parser's own time.
//!
//! It prints the time, the rate, the bytes written to the machine's disks meanwhile (from
//! `/sys/block/*/stat`, when readable: run it alone) and the file's size. OUT.redb is replaced.

use std::error::Error;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::mpsc;
use std::time::Instant;

use callstore::{Call, DEFAULT_IMPORT_SEGMENT_ROWS};
use redb::{Database, Durability, TableDefinition};

// The `callstore` command's allocator and settings: mimalloc, never handing memory back.
#[path = "../src/allocator.rs"]
mod allocator;

/// (chunk, first row of the block) → a block of encoded calls.
const CALLS: TableDefinition<(u32, u32), &[u8]> = TableDefinition::new("calls");

/// The most bytes of a block, as the store's record blocks: a 16 KiB page less redb's header.
const BLOCK_BYTES: usize = 16 * 1024 - 64;

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

fn main() -> Res<()> {
    allocator::tune();
    let mut args = std::env::args().skip(1);
    let usage = "usage: import_floor CALLS.jsonl OUT.redb [--chunk N] [--parse-only]";
    let jsonl = args.next().ok_or(usage)?;
    let out = args.next().ok_or(usage)?;
    let (mut chunk, mut parse_only) = (DEFAULT_IMPORT_SEGMENT_ROWS, false);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--chunk" => {
                let n = args.next().ok_or("--chunk needs a number")?;
                chunk = n.parse().map_err(|e| format!("--chunk {n:?}: {e}"))?;
                chunk = chunk.max(1);
            }
            "--parse-only" => parse_only = true,
            other => return Err(format!("unknown argument {other:?}; {usage}").into()),
        }
    }
    if Path::new(&out).exists() {
        std::fs::remove_file(&out).map_err(|e| format!("removing {out}: {e}"))?;
    }
    let database = Database::create(&out).map_err(|e| format!("creating {out}: {e}"))?;
    let sectors_before = sectors_written();
    let start = Instant::now();
    let (sender, receiver) = mpsc::sync_channel::<Vec<Call>>(2);
    let calls = std::thread::scope(|scope| -> Res<usize> {
        let writer = scope.spawn(move || -> Res<usize> {
            let mut written = 0;
            for (id, calls) in receiver.into_iter().enumerate() {
                written += calls.len();
                if !parse_only {
                    write_chunk(&database, u32::try_from(id)?, &calls)?;
                }
            }
            Ok(written)
        });
        let reader = BufReader::with_capacity(1 << 20, File::open(&jsonl)?);
        let mut held = Vec::with_capacity(chunk);
        for (n, line) in reader.lines().enumerate() {
            let line = line?;
            let call =
                Call::from_json(&line).map_err(|e| format!("{jsonl}, line {}: {e}", n + 1))?;
            held.push(call);
            if held.len() == chunk {
                // A closed channel means the writer stopped: its result says why.
                if sender.send(std::mem::take(&mut held)).is_err() {
                    break;
                }
                held.reserve(chunk);
            }
        }
        if !held.is_empty() {
            let _ = sender.send(held);
        }
        drop(sender);
        writer.join().map_err(|_| "the writing thread panicked")?
    })?;
    let elapsed = start.elapsed().as_secs_f64();
    let disk = match (sectors_before, sectors_written()) {
        (Some(before), Some(after)) => {
            format!(
                "{:.2} GB",
                after.saturating_sub(before) as f64 * 512.0 / 1e9
            )
        }
        _ => "unknown".to_string(),
    };
    let file = std::fs::metadata(&out)?.len();
    println!(
        "{} {calls} calls in {elapsed:.1} s: {:.0} calls/s; disk writes {disk}; file {:.2} GB",
        if parse_only { "parsed" } else { "wrote" },
        calls as f64 / elapsed,
        file as f64 / 1e9,
    );
    Ok(())
}

/// Sorts `calls` in a segment's row order, encodes them into blocks and writes the blocks as
/// chunk `id`, in one durable commit.
fn write_chunk(database: &Database, id: u32, calls: &[Call]) -> Res<()> {
    let mut order: Vec<u32> = (0..u32::try_from(calls.len())?).collect();
    let key = |i: &u32| {
        let c = &calls[*i as usize];
        (c.account_sid.as_str(), c.date_start, c.call_sid.as_str())
    };
    order.sort_unstable_by(|a, b| key(a).cmp(&key(b)));
    let config = bincode::config::standard();
    let mut txn = database.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    {
        let mut table = txn.open_table(CALLS)?;
        let (mut block, mut record) = (Vec::with_capacity(BLOCK_BYTES), Vec::new());
        let mut first = 0u32;
        for (row, &i) in order.iter().enumerate() {
            record.clear();
            bincode::serde::encode_into_std_write(&calls[i as usize], &mut record, config)?;
            if !block.is_empty() && block.len() + record.len() > BLOCK_BYTES {
                table.insert((id, first), block.as_slice())?;
                block.clear();
                first = u32::try_from(row)?;
            }
            block.extend_from_slice(&record);
        }
        if !block.is_empty() {
            table.insert((id, first), block.as_slice())?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// Sectors (512 bytes) written so far to the block devices, from `/sys/block/*/stat`, when
/// they can be read.
fn sectors_written() -> Option<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir("/sys/block").ok()? {
        let name = entry.ok()?.file_name();
        if name.to_string_lossy().starts_with("loop") {
            continue;
        }
        let stat =
            std::fs::read_to_string(Path::new("/sys/block").join(&name).join("stat")).ok()?;
        total += stat.split_whitespace().nth(6)?.parse::<u64>().ok()?;
    }
    Some(total)
}
