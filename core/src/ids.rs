//! Identifiers: [`Hname`] (contract, entry point and view names), [`ChainId`], [`ContractId`]
//! and [`AgentId`] (who owns an account or sends a request). docs/design.md §2.

use crate::hash::{blake2b_256, from_hex, to_hex, Hash32};
use borsh::{BorshDeserialize, BorshSerialize};
use core::fmt;
use serde::{Deserialize, Serialize};

/// A 32-bit name hash: the first 4 bytes of blake2b-256(name), read little-endian (IOTA Wasp's
/// hname, with blake2b in place of its hash). `0` and `u32::MAX` are reserved; the default is
/// [`Hname::NIL`].
#[derive(
    Default,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct Hname(pub u32);

/// A name whose hname is one of the reserved values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("name {0:?} hashes to a reserved hname; choose another name")]
pub struct HnameError(pub alloc::string::String);

impl Hname {
    /// Reserved: "no contract" / "no entry point".
    pub const NIL: Hname = Hname(0);
    /// Reserved for future use.
    pub const RESERVED_MAX: Hname = Hname(u32::MAX);

    /// The hname of `name`, which may be any UTF-8 text.
    ///
    /// # Errors
    /// [`HnameError`] if the hash lands on `0` or `u32::MAX` (one name in 2^31).
    pub fn try_of(name: &str) -> Result<Hname, HnameError> {
        let h = Self::hash_of(name);
        if h == Self::NIL || h == Self::RESERVED_MAX {
            Err(HnameError(name.into()))
        } else {
            Ok(h)
        }
    }

    /// The hname of `name` without the reserved-value check; for names fixed at compile time,
    /// which tests check once.
    pub fn of(name: &str) -> Hname {
        Self::hash_of(name)
    }

    fn hash_of(name: &str) -> Hname {
        let h = blake2b_256(name.as_bytes());
        Hname(u32::from_le_bytes([h.0[0], h.0[1], h.0[2], h.0[3]]))
    }

    /// Parses 8 hex digits, as printed by `Display`.
    pub fn from_hex(text: &str) -> Option<Hname> {
        let text = text.strip_prefix("0x").unwrap_or(text);
        // Exactly 8 hex digits: `from_str_radix` alone would also take a sign (`+1234567`),
        // giving one hname two spellings.
        if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(text, 16).ok().map(Hname)
    }

    /// Little-endian bytes: the 4-byte state-key prefix of this contract's partition.
    pub fn to_bytes(self) -> [u8; 4] {
        self.0.to_le_bytes()
    }
}

impl fmt::Display for Hname {
    /// 8 lower-case hex digits of the u32 value, as Wasp prints hnames.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl fmt::Debug for Hname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hname({:08x})", self.0)
    }
}

/// A chain's id: an opaque 32 bytes. Today the blake2b-256 of the chain's genesis parameters;
/// once chains are anchored on L1, the Kaspa covenant id of the anchor UTXO (docs/design.md §2).
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct ChainId(pub [u8; 32]);

impl ChainId {
    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> alloc::string::String {
        to_hex(&self.0)
    }
    /// Parses 64 hex characters.
    pub fn from_hex(text: &str) -> Option<ChainId> {
        Hash32::from_hex(text).map(|h| ChainId(h.0))
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainId({})", self.to_hex())
    }
}

/// A contract instance: its chain and its hname on that chain.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct ContractId {
    /// The chain the contract lives on.
    pub chain: ChainId,
    /// The contract's hname on that chain.
    pub hname: Hname,
}

impl fmt::Display for ContractId {
    /// `<hname>@<chain hex>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.hname, self.chain)
    }
}
impl fmt::Debug for ContractId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Who owns an on-chain account or sends a request (docs/design.md §2).
///
/// Borsh: a 1-byte tag (0 = address, 1 = contract) then the fields; these bytes are the account
/// keys in state, so the encoding is part of the protocol. The impls are written out (the bytes
/// are exactly what borsh's derive writes, which a test checks) so that a contract encodes an
/// agent with one write and decodes it with two reads: every contract call encodes several.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AgentId {
    /// A Kaspa pay-to-public-key (Schnorr, BIP-340) address: its 32-byte x-only public key, which
    /// is also the key that signs this agent's off-ledger requests.
    Address([u8; 32]),
    /// A contract.
    Contract(ContractId),
}

/// The longest encoding: tag, chain ID, hname.
const AGENT_ID_MAX_LEN: usize = 1 + 32 + 4;

impl BorshSerialize for AgentId {
    fn serialize<W: borsh::io::Write>(&self, writer: &mut W) -> borsh::io::Result<()> {
        let mut buf = [0u8; AGENT_ID_MAX_LEN];
        let len = match self {
            AgentId::Address(key) => {
                buf[1..33].copy_from_slice(key);
                33
            }
            AgentId::Contract(c) => {
                buf[0] = 1;
                buf[1..33].copy_from_slice(&c.chain.0);
                buf[33..].copy_from_slice(&c.hname.0.to_le_bytes());
                AGENT_ID_MAX_LEN
            }
        };
        writer.write_all(&buf[..len])
    }
}

impl BorshDeserialize for AgentId {
    fn deserialize_reader<R: borsh::io::Read>(reader: &mut R) -> borsh::io::Result<Self> {
        let mut tag = [0u8; 1];
        reader.read_exact(&mut tag).map_err(eof_to_length)?;
        match tag[0] {
            0 => {
                let mut key = [0u8; 32];
                reader.read_exact(&mut key).map_err(eof_to_length)?;
                Ok(AgentId::Address(key))
            }
            1 => {
                // Not `ContractId::deserialize_reader`: the derived decoder adds about 1 KB to
                // every contract module (its error formatting), which contracts pay gas for.
                let mut rest = [0u8; AGENT_ID_MAX_LEN - 1];
                reader.read_exact(&mut rest).map_err(eof_to_length)?;
                let mut chain = [0u8; 32];
                chain.copy_from_slice(&rest[..32]);
                let mut hname = [0u8; 4];
                hname.copy_from_slice(&rest[32..]);
                Ok(AgentId::Contract(ContractId {
                    chain: ChainId(chain),
                    hname: Hname(u32::from_le_bytes(hname)),
                }))
            }
            _ => Err(borsh::io::Error::new(
                borsh::io::ErrorKind::InvalidData,
                "Unexpected variant tag of AgentId",
            )),
        }
    }
}

/// Borsh's own error for input that ends early, as the derived impl returns it.
fn eof_to_length(e: borsh::io::Error) -> borsh::io::Error {
    if e.kind() == borsh::io::ErrorKind::UnexpectedEof {
        borsh::io::Error::new(
            borsh::io::ErrorKind::InvalidData,
            "Unexpected length of input",
        )
    } else {
        e
    }
}

impl AgentId {
    /// `addr:<64 hex>` or `contract:<hname>@<chain hex>`; the node and CLI print addresses in
    /// Kaspa's bech32 form instead, this form is for places without an address prefix.
    pub fn to_raw_string(&self) -> alloc::string::String {
        match self {
            AgentId::Address(pk) => alloc::format!("addr:{}", to_hex(pk)),
            AgentId::Contract(c) => alloc::format!("contract:{c}"),
        }
    }

    /// Parses the form printed by [`AgentId::to_raw_string`].
    pub fn from_raw_string(text: &str) -> Option<AgentId> {
        if let Some(hex) = text.strip_prefix("addr:") {
            return Some(AgentId::Address(from_hex(hex)?.try_into().ok()?));
        }
        let rest = text.strip_prefix("contract:")?;
        let (hname, chain) = rest.split_once('@')?;
        Some(AgentId::Contract(ContractId {
            chain: ChainId::from_hex(chain)?,
            hname: Hname::from_hex(hname)?,
        }))
    }
}

impl fmt::Debug for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_raw_string())
    }
}
impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_raw_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `#[derive(BorshSerialize, BorshDeserialize)]` makes of `AgentId`'s shape.
    #[derive(BorshSerialize, BorshDeserialize, PartialEq, Debug)]
    enum DerivedAgentId {
        Address([u8; 32]),
        Contract(ContractId),
    }

    #[test]
    fn agent_id_borsh_is_the_derived_encoding() {
        let contract = ContractId {
            chain: ChainId([7; 32]),
            hname: Hname(0x0102_0304),
        };
        let cases = [
            (AgentId::Address([9; 32]), DerivedAgentId::Address([9; 32])),
            (
                AgentId::Contract(contract),
                DerivedAgentId::Contract(contract),
            ),
        ];
        for (ours, derived) in cases {
            let bytes = borsh::to_vec(&ours).unwrap();
            assert_eq!(bytes, borsh::to_vec(&derived).unwrap());
            assert_eq!(borsh::from_slice::<AgentId>(&bytes).unwrap(), ours);
            // Every truncation fails, as the derived decoder does, and so does a trailing byte.
            for cut in 0..bytes.len() {
                assert!(borsh::from_slice::<AgentId>(&bytes[..cut]).is_err());
                assert!(borsh::from_slice::<DerivedAgentId>(&bytes[..cut]).is_err());
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(borsh::from_slice::<AgentId>(&longer).is_err());
        }
        // A tag other than 0 and 1 is rejected by both.
        let mut bad = borsh::to_vec(&AgentId::Address([1; 32])).unwrap();
        bad[0] = 2;
        assert!(borsh::from_slice::<AgentId>(&bad).is_err());
        assert!(borsh::from_slice::<DerivedAgentId>(&bad).is_err());
        // Inside a larger value the decoder takes exactly its own bytes.
        let pair = (AgentId::Contract(contract), 5u128);
        let bytes = borsh::to_vec(&pair).unwrap();
        assert_eq!(bytes.len(), 37 + 16);
        assert_eq!(borsh::from_slice::<(AgentId, u128)>(&bytes).unwrap(), pair);
    }

    #[test]
    fn hname_is_first_four_bytes_le_of_blake2b() {
        let h = blake2b_256(b"token");
        let expected = u32::from_le_bytes([h.0[0], h.0[1], h.0[2], h.0[3]]);
        assert_eq!(Hname::of("token").0, expected);
        assert_eq!(Hname::try_of("token"), Ok(Hname(expected)));
        assert_ne!(Hname::of("token"), Hname::of("tokem"));
        let shown = alloc::format!("{}", Hname::of("token"));
        assert_eq!(Hname::from_hex(&shown), Some(Hname::of("token")));
    }

    #[test]
    fn agent_id_raw_string_round_trips() {
        let a = AgentId::Address([7; 32]);
        let c = AgentId::Contract(ContractId {
            chain: ChainId([9; 32]),
            hname: Hname(0xdead_beef),
        });
        for agent in [a, c] {
            assert_eq!(
                AgentId::from_raw_string(&agent.to_raw_string()),
                Some(agent)
            );
        }
        assert_eq!(AgentId::from_raw_string("addr:12"), None);
        assert_eq!(AgentId::from_raw_string("nonsense"), None);
    }

    #[test]
    fn agent_id_borsh_layout_is_tag_then_payload() {
        let bytes = borsh::to_vec(&AgentId::Address([1; 32])).unwrap();
        assert_eq!(bytes.len(), 33);
        assert_eq!(bytes[0], 0);
    }
}
