//! End-to-end checks of the stripe codec: every scheme, size and loss pattern, damage detection
//! and repair, key and placement binding, and the ciphertext checked by a second AES-GCM.

#![allow(clippy::unwrap_used)]
use aes_gcm::aead::{Aead, KeyInit, Payload};
use rand::{Rng, RngCore, SeedableRng};
use serrano_codec::{
    CodecError, Compression, DataKey, Erasure, Fragment, ObjectCodec, Scheme, stripe_nonce_bytes,
};

fn codec(
    scheme: Scheme,
    k: usize,
    m: usize,
    compression: Compression,
    key: Option<DataKey>,
) -> ObjectCodec {
    ObjectCodec::new(
        Erasure::new(scheme, k, m).unwrap(),
        compression,
        key,
        *b"object-identity!",
    )
    .unwrap()
}

fn fragments_of(codec: &ObjectCodec, stripe: u64, plain: &[u8]) -> Vec<Vec<u8>> {
    let encoded = codec.encode_stripe(stripe, plain).unwrap();
    (0..encoded.fragment_count())
        .map(|i| encoded.fragment_vec(i).unwrap())
        .collect()
}

fn parsed(raw: &[Vec<u8>]) -> Vec<Option<Fragment>> {
    raw.iter()
        .map(|f| Some(Fragment::from_bytes(f).unwrap()))
        .collect()
}

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut bytes);
    bytes
}

fn log_lines(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(format!("{i} edge-{} cpu={} ok\n", i % 7, i * 37 % 100).as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

#[test]
fn every_shape_round_trips_with_up_to_m_fragments_lost() {
    let sizes = [0usize, 1, 2, 63, 64, 65, 4096, 100_003, 1 << 20];
    for scheme in [Scheme::ReedSolomon, Scheme::Rlnc] {
        for (k, m) in [(1, 0), (2, 1), (3, 1), (4, 2)] {
            for compression in [Compression::None, Compression::Deflate { level: 7 }] {
                let codec = codec(
                    scheme,
                    k,
                    m,
                    compression,
                    Some(DataKey::generate().unwrap()),
                );
                for (n, &len) in sizes.iter().enumerate() {
                    let plain = if n % 2 == 0 {
                        log_lines(len)
                    } else {
                        random_bytes(len, n as u64)
                    };
                    let raw = fragments_of(&codec, n as u64, &plain);
                    assert_eq!(raw.len(), k + m);
                    for lost in 0..(1u32 << (k + m)) {
                        if lost.count_ones() as usize > m {
                            continue;
                        }
                        let mut fragments = parsed(&raw);
                        for (i, f) in fragments.iter_mut().enumerate() {
                            if lost & (1 << i) != 0 {
                                *f = None;
                            }
                        }
                        let decoded = codec.decode_stripe(n as u64, fragments).unwrap();
                        assert_eq!(
                            decoded.plain, plain,
                            "{scheme:?} {k}+{m} {compression:?} len {len} lost {lost:b}"
                        );
                        assert!(decoded.damaged.is_empty());
                    }
                }
            }
        }
    }
}

#[test]
fn compressible_stripes_are_stored_smaller() {
    let plain = log_lines(1 << 20);
    let squeezed = codec(
        Scheme::ReedSolomon,
        3,
        1,
        Compression::Deflate { level: 7 },
        None,
    )
    .encode_stripe(0, &plain)
    .unwrap();
    assert!(squeezed.layout.compressed());
    assert!(
        (squeezed.layout.stored_len as usize) < plain.len() / 3,
        "{:?}",
        squeezed.layout
    );
    let noise = random_bytes(1 << 20, 1);
    let kept = codec(
        Scheme::ReedSolomon,
        3,
        1,
        Compression::Deflate { level: 7 },
        None,
    )
    .encode_stripe(0, &noise)
    .unwrap();
    assert!(!kept.layout.compressed());
}

#[test]
fn too_many_losses_name_the_stripe_and_the_counts() {
    let codec = codec(
        Scheme::Rlnc,
        3,
        1,
        Compression::None,
        Some(DataKey::generate().unwrap()),
    );
    let raw = fragments_of(&codec, 9, &log_lines(5000));
    let mut fragments = parsed(&raw);
    fragments[0] = None;
    fragments[2] = None;
    assert_eq!(
        codec.decode_stripe(9, fragments).unwrap_err(),
        CodecError::NotEnoughFragments {
            stripe: 9,
            available: 2,
            needed: 3
        }
    );
}

#[test]
fn a_corrupted_fragment_is_detected_and_repaired_to_the_same_bytes() {
    for scheme in [Scheme::ReedSolomon, Scheme::Rlnc] {
        let codec = codec(
            scheme,
            3,
            1,
            Compression::Deflate { level: 3 },
            Some(DataKey::generate().unwrap()),
        );
        let plain = random_bytes(300_000, 3);
        let raw = fragments_of(&codec, 4, &plain);
        for victim in 0..4 {
            let mut damaged = raw.clone();
            let middle = damaged[victim].len() / 2;
            damaged[victim][middle] ^= 0x40; // bit rot inside the shard
            let decoded = codec.decode_stripe(4, parsed(&damaged)).unwrap();
            assert_eq!(decoded.plain, plain);
            assert_eq!(decoded.damaged, vec![victim]);
            let repaired = codec.repair_stripe(4, parsed(&damaged)).unwrap();
            assert_eq!(
                repaired,
                vec![(victim, raw[victim].clone())],
                "{scheme:?} victim {victim}"
            );
        }
        // A lost fragment is rebuilt the same way.
        let mut fragments = parsed(&raw);
        fragments[1] = None;
        assert_eq!(
            codec.repair_stripe(4, fragments).unwrap(),
            vec![(1, raw[1].clone())]
        );
        assert!(codec.repair_stripe(4, parsed(&raw)).unwrap().is_empty());
    }
}

#[test]
fn damage_that_fools_the_crc_is_caught_by_the_gcm_tag() {
    let codec = codec(
        Scheme::ReedSolomon,
        3,
        1,
        Compression::None,
        Some(DataKey::generate().unwrap()),
    );
    let plain = random_bytes(90_000, 4);
    let raw = fragments_of(&codec, 0, &plain);
    // Rewrite fragment 1 with different shard bytes and a matching header CRC.
    let mut forged = Fragment::from_bytes(&raw[1]).unwrap();
    forged.shard[10] ^= 1;
    let mut bytes = forged.header.to_bytes(&forged.shard).to_vec();
    bytes.extend_from_slice(&forged.shard);
    let mut fragments = parsed(&raw);
    fragments[1] = Some(Fragment::from_bytes(&bytes).unwrap());
    let decoded = codec.decode_stripe(0, fragments.clone()).unwrap();
    assert_eq!(decoded.plain, plain);
    assert_eq!(decoded.damaged, vec![1]);
    // With no spare fragment to route around it, the read fails instead of returning bad data.
    fragments[3] = None;
    assert_eq!(
        codec.decode_stripe(0, fragments).unwrap_err(),
        CodecError::Authentication { stripe: 0 }
    );
}

#[test]
fn fragments_are_bound_to_their_key_object_and_position() {
    let key = DataKey::generate().unwrap();
    let bytes = *key.expose_bytes();
    let codec_a = codec(Scheme::ReedSolomon, 2, 1, Compression::None, Some(key));
    let raw = fragments_of(&codec_a, 5, &log_lines(10_000));

    let wrong_key = codec(
        Scheme::ReedSolomon,
        2,
        1,
        Compression::None,
        Some(DataKey::generate().unwrap()),
    );
    assert_eq!(
        wrong_key.decode_stripe(5, parsed(&raw)).unwrap_err(),
        CodecError::Authentication { stripe: 5 }
    );

    let other_object = ObjectCodec::new(
        Erasure::new(Scheme::ReedSolomon, 2, 1).unwrap(),
        Compression::None,
        Some(DataKey::from_bytes(bytes).unwrap()),
        *b"another-object!!",
    )
    .unwrap();
    assert!(matches!(
        other_object.decode_stripe(5, parsed(&raw)),
        Err(CodecError::Authentication { .. })
    ));

    // Read as another stripe: every header disagrees, so nothing is usable.
    assert!(matches!(
        codec_a.decode_stripe(6, parsed(&raw)),
        Err(CodecError::NotEnoughFragments { available: 0, .. })
    ));
    // Fragments in the wrong slots are refused, not decoded into garbage.
    let mut swapped = parsed(&raw);
    swapped.swap(0, 1);
    let decoded = codec_a.decode_stripe(5, swapped);
    assert!(matches!(
        decoded,
        Err(CodecError::NotEnoughFragments { available: 1, .. })
    ));

    let unencrypted = codec(Scheme::ReedSolomon, 2, 1, Compression::None, None);
    assert!(matches!(
        unencrypted.decode_stripe(5, parsed(&raw)),
        Err(CodecError::Key(_))
    ));
}

#[test]
fn ciphertext_matches_a_second_aes_gcm_implementation() {
    let key = DataKey::generate().unwrap();
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(key.expose_bytes()).unwrap();
    let codec = codec(Scheme::ReedSolomon, 1, 0, Compression::None, Some(key));
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    for stripe in [0u64, 1, 77, u64::MAX] {
        let plain = random_bytes(rng.random_range(0..20_000), stripe);
        let encoded = codec.encode_stripe(stripe, &plain).unwrap();
        let (_, shard) = encoded.fragment(0).unwrap();
        let sealed = &shard[..encoded.layout.stored_len as usize];
        let aad = codec.aad(stripe, encoded.layout.flags, plain.len() as u32);
        let nonce = stripe_nonce_bytes(stripe);
        let opened = cipher
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .expect("RustCrypto aes-gcm opens what aws-lc-rs sealed");
        assert_eq!(opened, plain);
        let resealed = cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: &plain,
                    aad: &aad,
                },
            )
            .unwrap();
        assert_eq!(resealed, sealed);
    }
}

#[test]
fn bad_input_is_an_error_never_a_panic() {
    let codec = codec(
        Scheme::Rlnc,
        3,
        1,
        Compression::None,
        Some(DataKey::generate().unwrap()),
    );
    assert!(codec.decode_stripe(0, vec![None, None]).is_err());
    assert!(
        codec
            .decode_stripe(0, vec![None, None, None, None])
            .is_err()
    );
    assert!(Fragment::from_bytes(&[]).is_err());
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let raw = fragments_of(&codec, 0, &random_bytes(5000, 1));
    for _ in 0..2000 {
        let mut fuzzed = raw.clone();
        let which = rng.random_range(0..4);
        let at = rng.random_range(0..fuzzed[which].len());
        fuzzed[which][at] = rng.random();
        if rng.random_bool(0.2) {
            let cut = rng.random_range(0..fuzzed[which].len());
            fuzzed[which].truncate(cut);
        }
        let fragments: Vec<Option<Fragment>> = fuzzed
            .iter()
            .map(|f| Fragment::from_bytes(f).ok())
            .collect();
        if let Ok(decoded) = codec.decode_stripe(0, fragments) {
            assert_eq!(decoded.plain.len(), 5000);
        }
    }
    assert!(
        ObjectCodec::new(
            Erasure::new(Scheme::ReedSolomon, 2, 1).unwrap(),
            Compression::Deflate { level: 12 },
            None,
            [0; 16]
        )
        .is_err()
    );
}
