//! The committee member's signing log on disk ([`wisp_settlement::committee::SigningLog`]):
//! which successor this member signed for each anchor UTXO, so that it never signs two, even
//! across crashes and restarts. An append-only file of fixed 68-byte records (the anchor's
//! transaction id and output index, the signed sighash), each written and flushed to disk
//! (`fsync`) before the member makes its signature share.
//!
//! A record cut short by a crash is ignored on open: the member had not signed yet (the share
//! is made only after the record is durable), so forgetting it is safe.

use kaspa_consensus_core::tx::TransactionOutpoint;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use wisp_settlement::committee::{outpoint_key, SigningLog};

/// Bytes of one record: transaction id (32), output index (u32 LE), sighash (32).
pub const RECORD_BYTES: usize = 68;

/// A [`SigningLog`] kept in a file.
#[derive(Debug)]
pub struct FileSigningLog {
    path: PathBuf,
    file: File,
    signed: BTreeMap<([u8; 32], u32), [u8; 32]>,
}

impl FileSigningLog {
    /// Opens (or creates) the log at `path` and reads its records. A trailing partial record
    /// (a crash while writing it) is cut off.
    ///
    /// # Errors
    /// The I/O error, naming the file.
    pub fn open(path: &Path) -> std::io::Result<FileSigningLog> {
        let named = |e: std::io::Error| {
            std::io::Error::new(e.kind(), format!("signing log {}: {e}", path.display()))
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(named)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(named)?;
        let whole = bytes.len() - bytes.len() % RECORD_BYTES;
        if whole != bytes.len() {
            file.set_len(whole as u64).map_err(named)?;
            file.sync_all().map_err(named)?;
        }
        let mut signed = BTreeMap::new();
        for record in bytes[..whole].chunks_exact(RECORD_BYTES) {
            let mut txid = [0u8; 32];
            txid.copy_from_slice(&record[..32]);
            let mut index = [0u8; 4];
            index.copy_from_slice(&record[32..36]);
            let mut sighash = [0u8; 32];
            sighash.copy_from_slice(&record[36..]);
            // The first record for an anchor is the one that counts (a later one cannot exist:
            // `record` is only called for anchors without one).
            signed
                .entry((txid, u32::from_le_bytes(index)))
                .or_insert(sighash);
        }
        Ok(FileSigningLog {
            path: path.to_path_buf(),
            file,
            signed,
        })
    }

    /// Anchors this log holds a signed successor for.
    pub fn len(&self) -> usize {
        self.signed.len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.signed.is_empty()
    }
}

impl SigningLog for FileSigningLog {
    fn signed(&self, anchor: &TransactionOutpoint) -> Option<[u8; 32]> {
        self.signed.get(&outpoint_key(anchor)).copied()
    }

    fn record(&mut self, anchor: &TransactionOutpoint, sighash: [u8; 32]) -> Result<(), String> {
        let key = outpoint_key(anchor);
        let mut record = [0u8; RECORD_BYTES];
        record[..32].copy_from_slice(&key.0);
        record[32..36].copy_from_slice(&key.1.to_le_bytes());
        record[36..].copy_from_slice(&sighash);
        self.file
            .write_all(&record)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        self.signed.insert(key, sighash);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaspa_hashes::Hash;

    fn anchor(n: u8) -> TransactionOutpoint {
        TransactionOutpoint::new(Hash::from_bytes([n; 32]), u32::from(n))
    }

    #[test]
    fn records_survive_a_reopen_and_a_torn_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.log");
        let mut log = FileSigningLog::open(&path).unwrap();
        assert!(log.is_empty());
        log.record(&anchor(1), [7; 32]).unwrap();
        log.record(&anchor(2), [8; 32]).unwrap();
        drop(log);
        // A crash while appending a third record leaves part of it.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[9; 40]).unwrap();
        drop(f);
        let mut log = FileSigningLog::open(&path).unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(log.signed(&anchor(1)), Some([7; 32]));
        assert_eq!(log.signed(&anchor(2)), Some([8; 32]));
        assert_eq!(log.signed(&anchor(3)), None);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            2 * RECORD_BYTES as u64
        );
        // Appends after the cut land on a record boundary.
        log.record(&anchor(3), [9; 32]).unwrap();
        drop(log);
        let log = FileSigningLog::open(&path).unwrap();
        assert_eq!(log.signed(&anchor(3)), Some([9; 32]));
        // Output index is part of the key.
        let other_index = TransactionOutpoint::new(Hash::from_bytes([1; 32]), 9);
        assert_eq!(log.signed(&other_index), None);
    }

    #[test]
    fn a_member_with_a_file_log_refuses_a_second_successor_after_a_restart() {
        use rand_chacha::rand_core::SeedableRng;
        use wisp_settlement::anchor::{AnchorRules, AnchorState};
        use wisp_settlement::committee::{self, CommitteeError, CommitteeSize};
        use wisp_settlement::tx::{successor_unsigned, AnchorUtxo};

        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let keys = committee::dkg_in_process(CommitteeSize::new(3, 2).unwrap(), &mut rng).unwrap();
        let rules = AnchorRules {
            max_fee_sompi: 10_000_000,
        };
        let utxo = AnchorUtxo {
            outpoint: anchor(1),
            amount_sompi: 10_000_000_000,
            state: AnchorState::genesis(keys[0].group_key()),
            covenant_id: Hash::from_bytes([9; 32]),
            block_daa_score: 5,
        };
        let new = AnchorState {
            block_index: 1,
            header_hash: [1; 32],
            outbox: wisp_settlement::outbox_commitment(&[]),
            committee_key: keys[0].group_key(),
        };
        let first = successor_unsigned(&rules, &utxo, &[], &[], new, 1_000).unwrap();
        let second = successor_unsigned(&rules, &utxo, &[], &[], new, 2_000).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.log");
        let sign = |u: &wisp_settlement::tx::UnsignedAnchorTx,
                    rng: &mut rand_chacha::ChaCha20Rng| {
            let mut log = FileSigningLog::open(&path).unwrap();
            let (n1, c1) = keys[0].commit(rng).unwrap();
            let (_, c2) = keys[1].commit(rng).unwrap();
            let commitments = std::collections::BTreeMap::from([(1, c1), (2, c2)]);
            keys[0].sign_anchor(u, &commitments, n1, &mut log)
        };
        sign(&first, &mut rng).unwrap();
        // A new process (the log reopened) still refuses the other successor.
        let err = sign(&second, &mut rng).unwrap_err();
        assert!(matches!(err, CommitteeError::Equivocation { .. }), "{err}");
        sign(&first, &mut rng).unwrap();
    }
}
