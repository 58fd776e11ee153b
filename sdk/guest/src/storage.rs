//! Typed storage scoped to the contract: the runtime prefixes every key with the contract's hname,
//! so a contract can neither read nor write another's state.
//!
//! Key layout (contract-relative): an [`Item`] lives at its name's bytes; a [`Map`] entry at the
//! map's name, a `0x00` byte, then the borsh-encoded key. Names must not contain `0x00`.

use crate::env::{abort, encode, encode_into};
use crate::sys;
use alloc::vec;
use alloc::vec::Vec;
use borsh::{BorshDeserialize, BorshSerialize};
use core::marker::PhantomData;

/// Reads a raw key of this contract's state.
pub fn get_raw(key: &[u8]) -> Option<Vec<u8>> {
    // SAFETY: pointer and length describe `key`.
    let len = unsafe { sys::storage_get(key.as_ptr() as u32, key.len() as u32) };
    if len < 0 {
        return None;
    }
    let mut buf = vec![0u8; len as usize];
    // SAFETY: buf has exactly the register's length.
    unsafe { sys::register_read(buf.as_mut_ptr() as u32) };
    Some(buf)
}

/// Writes a raw key of this contract's state.
pub fn set_raw(key: &[u8], value: &[u8]) {
    // SAFETY: pointers and lengths describe `key` and `value`.
    unsafe {
        sys::storage_set(
            key.as_ptr() as u32,
            key.len() as u32,
            value.as_ptr() as u32,
            value.len() as u32,
        )
    }
}

/// Deletes a raw key of this contract's state.
pub fn remove_raw(key: &[u8]) {
    // SAFETY: pointer and length describe `key`.
    unsafe { sys::storage_remove(key.as_ptr() as u32, key.len() as u32) }
}

fn decode<T: BorshDeserialize>(bytes: &[u8]) -> T {
    match borsh::from_slice(bytes) {
        Ok(v) => v,
        Err(_) => abort(
            wisp_core::CONTRACT_PANIC_CODE,
            "stored value does not decode as its type",
        ),
    }
}

/// One typed value under a fixed key.
pub struct Item<T> {
    key: &'static str,
    _value: PhantomData<T>,
}

impl<T: BorshSerialize + BorshDeserialize> Item<T> {
    /// An item stored under `key`.
    pub const fn new(key: &'static str) -> Self {
        Item {
            key,
            _value: PhantomData,
        }
    }
    /// The value, if set.
    pub fn get(&self) -> Option<T> {
        get_raw(self.key.as_bytes()).map(|b| decode(&b))
    }
    /// The value, or `T::default()` if unset.
    pub fn get_or_default(&self) -> T
    where
        T: Default,
    {
        self.get().unwrap_or_default()
    }
    /// Stores `value`.
    pub fn set(&self, value: &T) {
        set_raw(self.key.as_bytes(), &encode(value))
    }
    /// Deletes the value.
    pub fn remove(&self) {
        remove_raw(self.key.as_bytes())
    }
}

/// A typed map from `K` to `V`.
pub struct Map<K, V> {
    name: &'static str,
    _types: PhantomData<(K, V)>,
}

impl<K: BorshSerialize, V: BorshSerialize + BorshDeserialize> Map<K, V> {
    /// A map stored under `name`.
    pub const fn new(name: &'static str) -> Self {
        Map {
            name,
            _types: PhantomData,
        }
    }
    /// The contract-relative state key of `key`.
    pub fn key_bytes(&self, key: &K) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.name.len() + 40);
        out.extend_from_slice(self.name.as_bytes());
        out.push(0);
        encode_into(key, &mut out);
        out
    }
    /// The value at `key`, if any.
    pub fn get(&self, key: &K) -> Option<V> {
        get_raw(&self.key_bytes(key)).map(|b| decode(&b))
    }
    /// The value at `key`, or `V::default()`.
    pub fn get_or_default(&self, key: &K) -> V
    where
        V: Default,
    {
        self.get(key).unwrap_or_default()
    }
    /// Stores `value` at `key`.
    pub fn set(&self, key: &K, value: &V) {
        set_raw(&self.key_bytes(key), &encode(value))
    }
    /// Deletes `key`.
    pub fn remove(&self, key: &K) {
        remove_raw(&self.key_bytes(key))
    }
}
