//! Codec throughput on one core: AES-256-GCM + 3+1 Reed-Solomon and 3+1 RLNC, 1 MiB stripes,
//! encode and decode (healthy: all data fragments; degraded: one data fragment lost), plus the
//! building blocks for comparison. Run: `cargo bench -p serrano-codec --bench codec`.

use std::hint::black_box;
use std::time::Instant;

use serrano_codec::{Compression, DataKey, Erasure, Fragment, ObjectCodec, Scheme};

const STRIPE: usize = 1 << 20;
const STRIPES: usize = 96;
const ROUNDS: usize = 5;

fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Best of ROUNDS, in GB/s of plain bytes.
fn measure(mut run: impl FnMut() -> usize) -> f64 {
    let mut best = 0f64;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let bytes = run();
        best = best.max(bytes as f64 / started.elapsed().as_secs_f64() / 1e9);
    }
    best
}

fn row(name: &str, gbps: f64, note: &str) {
    println!("{name:<44} {gbps:>7.2}  {note}");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let plain = noise(STRIPE);
    println!(
        "serrano-codec, 1 core, {} MiB stripes x {STRIPES}, incompressible data, best of {ROUNDS}",
        STRIPE >> 20
    );
    println!("{:<44} {:>7}  note", "operation", "GB/s");

    // Building blocks.
    let block_codec = ObjectCodec::new(
        Erasure::new(Scheme::ReedSolomon, 1, 0)?,
        Compression::None,
        Some(DataKey::generate()?),
        [1; 16],
    )?;
    row(
        "AES-256-GCM seal only (1+0, no coding)",
        measure(|| {
            for s in 0..STRIPES {
                black_box(block_codec.encode_stripe(s as u64, &plain).ok());
            }
            STRIPES * STRIPE
        }),
        "aws-lc-rs; includes the copy into the stripe buffer and the CRC",
    );
    row(
        "CRC-32 (crc32fast)",
        measure(|| {
            for _ in 0..STRIPES {
                black_box(crc32fast::hash(&plain));
            }
            STRIPES * STRIPE
        }),
        "fragment checksums",
    );

    for scheme in [Scheme::ReedSolomon, Scheme::Rlnc] {
        let name = match scheme {
            Scheme::ReedSolomon => "RS",
            Scheme::Rlnc => "RLNC",
        };
        let codec = ObjectCodec::new(
            Erasure::new(scheme, 3, 1)?,
            Compression::None,
            Some(DataKey::generate()?),
            [2; 16],
        )?;
        row(
            &format!("encode AES-GCM + 3+1 {name}"),
            measure(|| {
                for s in 0..STRIPES {
                    black_box(codec.encode_stripe(s as u64, &plain).ok());
                }
                STRIPES * STRIPE
            }),
            "plain bytes in, 4 fragments out",
        );
        let encoded: Vec<Vec<Fragment>> = (0..STRIPES)
            .map(|s| {
                let stripe = codec.encode_stripe(s as u64, &plain)?;
                (0..4)
                    .map(|i| {
                        let (header, shard) = stripe.fragment(i).ok_or("fragment")?;
                        Ok(Fragment::from_parts(header, shard.to_vec())?)
                    })
                    .collect::<Result<Vec<_>, Box<dyn std::error::Error>>>()
            })
            .collect::<Result<_, _>>()?;
        for (label, lost) in [
            ("healthy", None),
            ("degraded, 1 data fragment lost", Some(1usize)),
        ] {
            let gbps = measure_decode(&codec, &encoded, lost)?;
            row(
                &format!("decode AES-GCM + 3+1 {name}, {label}"),
                gbps,
                "plain bytes out",
            );
        }
        let compressing = ObjectCodec::new(
            Erasure::new(scheme, 3, 1)?,
            Compression::Deflate { level: 7 },
            Some(DataKey::generate()?),
            [3; 16],
        )?;
        row(
            &format!("encode DEFLATE policy + AES-GCM + 3+1 {name}"),
            measure(|| {
                for s in 0..STRIPES {
                    black_box(compressing.encode_stripe(s as u64, &plain).ok());
                }
                STRIPES * STRIPE
            }),
            "incompressible: the 8 KiB sample says skip",
        );
    }
    Ok(())
}

fn measure_decode(
    codec: &ObjectCodec,
    encoded: &[Vec<Fragment>],
    lost: Option<usize>,
) -> Result<f64, Box<dyn std::error::Error>> {
    let mut best = 0f64;
    for _ in 0..ROUNDS {
        // Fresh owned fragments per round, made outside the timed part (a backend read makes
        // them in the gateway).
        let batches: Vec<Vec<Option<Fragment>>> = encoded
            .iter()
            .map(|fragments| {
                fragments
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (Some(i) != lost).then(|| f.clone()))
                    .collect()
            })
            .collect();
        let started = Instant::now();
        for (s, fragments) in batches.into_iter().enumerate() {
            let decoded = codec.decode_stripe(s as u64, fragments)?;
            black_box(decoded.plain);
        }
        best = best.max((encoded.len() * STRIPE) as f64 / started.elapsed().as_secs_f64() / 1e9);
    }
    Ok(best)
}
