//! The host ABI dispatch: the body of every host function of `wisp_core::abi`, the helpers
//! they share (gas, guest memory, frames, view checks), and the linker registration generated
//! from the ABI table, which charges each function's base gas in one place.

use crate::host::{CoreCall, Host, SpecialEntry};
use crate::runtime::{run_frame, Ctx, Door, Frame};
use crate::trap::{fail, request_error, vm_error};
use wasmi::{Caller, Error, Linker, Memory, TrapCode};
use wisp_core::abi::IMPORT_MODULE;
use wisp_core::{
    AgentId, CallKind, ContractId, ErrorLevel, Event, Hname, ReceiptError, RequestErrorCode,
    VmErrorCode,
};

/// Takes `amount` gas from the request (out of gas if it holds less). Every host function
/// first settles the memory grown since the last host call
/// ([`crate::runtime::settle_growth`]), then takes its base charge here.
pub(crate) fn charge<H>(caller: &mut Caller<'_, Ctx<H>>, amount: u64) -> Result<(), Error> {
    let left = caller.get_fuel()?;
    if left < amount {
        caller.set_fuel(0)?;
        return Err(Error::from(TrapCode::OutOfFuel));
    }
    caller.set_fuel(left - amount)
}

pub(crate) fn frame<'a, H>(caller: &'a Caller<'_, Ctx<H>>) -> Result<&'a Frame, Error> {
    caller
        .data()
        .frames
        .last()
        .ok_or_else(|| Error::new("host function called outside a frame"))
}

pub(crate) fn memory<H>(caller: &Caller<'_, Ctx<H>>) -> Result<Memory, Error> {
    frame(caller)?.memory.ok_or_else(|| {
        fail(vm_error(
            VmErrorCode::HostAbiMisuse,
            "the contract exports no memory",
        ))
    })
}

pub(crate) fn read_mem<H>(
    caller: &Caller<'_, Ctx<H>>,
    ptr: u32,
    len: u32,
) -> Result<Vec<u8>, Error> {
    let mut buf = Vec::new();
    read_mem_into(caller, ptr, len, &mut buf)?;
    Ok(buf)
}

/// [`read_mem`] into `buf` (its contents replaced, its capacity reused).
pub(crate) fn read_mem_into<H>(
    caller: &Caller<'_, Ctx<H>>,
    ptr: u32,
    len: u32,
    buf: &mut Vec<u8>,
) -> Result<(), Error> {
    let mem = memory(caller)?;
    buf.clear();
    // Copied straight from memory, not zeroed first.
    let start = ptr as usize;
    let range = start.checked_add(len as usize).map(|end| start..end);
    let bytes = range.and_then(|r| mem.data(caller).get(r)).ok_or_else(|| {
        fail(vm_error(
            VmErrorCode::HostAbiMisuse,
            format!("bytes {ptr}..{ptr}+{len} are outside linear memory"),
        ))
    })?;
    buf.extend_from_slice(bytes);
    Ok(())
}

/// `f` of the frame's contract and the storage key at `ptr..ptr + len`, read into the
/// store's key buffer (kept from call to call for its capacity; `len` is checked against
/// `max_key_bytes` and charged before).
pub(crate) fn with_key<H, R>(
    caller: &mut Caller<'_, Ctx<H>>,
    ptr: u32,
    len: u32,
    f: impl FnOnce(&mut Ctx<H>, Hname, &[u8]) -> R,
) -> Result<R, Error> {
    let mut key = std::mem::take(&mut caller.data_mut().key);
    read_mem_into(caller, ptr, len, &mut key)?;
    let contract = frame(caller)?.contract;
    let data = caller.data_mut();
    let out = f(data, contract, &key);
    data.key = key;
    Ok(out)
}

pub(crate) fn write_mem<H>(
    caller: &mut Caller<'_, Ctx<H>>,
    ptr: u32,
    data: &[u8],
) -> Result<(), Error> {
    let mem = memory(caller)?;
    mem.write(caller, ptr as usize, data).map_err(|_| {
        fail(vm_error(
            VmErrorCode::HostAbiMisuse,
            format!(
                "writing {} bytes at {ptr} is outside linear memory",
                data.len()
            ),
        ))
    })
}

pub(crate) fn check_len(len: u32, max: usize, what: &str) -> Result<(), Error> {
    if len as usize > max {
        return Err(fail(request_error(
            RequestErrorCode::TooLarge,
            format!("{what} of {len} bytes exceeds the limit of {max}"),
        )));
    }
    Ok(())
}

pub(crate) fn read_only<H>(caller: &Caller<'_, Ctx<H>>) -> bool {
    caller
        .data()
        .frames
        .iter()
        .any(|f| f.kind == CallKind::View)
}

pub(crate) fn deny_in_view<H>(caller: &Caller<'_, Ctx<H>>, what: &str) -> Result<(), Error> {
    if read_only(caller) {
        return Err(fail(vm_error(
            VmErrorCode::WriteInView,
            format!("a view cannot {what}"),
        )));
    }
    Ok(())
}

pub(crate) fn decode_agent<H>(
    caller: &Caller<'_, Ctx<H>>,
    ptr: u32,
    len: u32,
) -> Result<AgentId, Error> {
    let bytes = read_mem(caller, ptr, len.min(64))?;
    borsh::from_slice(&bytes).map_err(|_| {
        fail(vm_error(
            VmErrorCode::HostAbiMisuse,
            "bytes are not a borsh-encoded AgentId",
        ))
    })
}

pub(crate) fn self_agent<H: Host>(caller: &Caller<'_, Ctx<H>>) -> Result<AgentId, Error> {
    let contract = frame(caller)?.contract;
    Ok(AgentId::Contract(ContractId {
        chain: caller.data().host.chain_id(),
        hname: contract,
    }))
}

mod imp {
    //! Host function bodies; the base gas is already charged by the generated dispatch.
    use super::*;

    type R<T> = Result<T, Error>;

    pub fn input<H: Host>(c: &mut Caller<'_, Ctx<H>>, per_byte: u64) -> R<u32> {
        let args = frame(c)?.args.clone();
        charge(c, per_byte * args.len() as u64)?;
        let len = args.len() as u32;
        c.data_mut().register = args;
        Ok(len)
    }

    pub fn register_len<H: Host>(c: &mut Caller<'_, Ctx<H>>, _: u64) -> R<u32> {
        Ok(c.data().register.len() as u32)
    }

    pub fn register_read<H: Host>(c: &mut Caller<'_, Ctx<H>>, per_byte: u64, ptr: u32) -> R<()> {
        let data = std::mem::take(&mut c.data_mut().register);
        charge(c, per_byte * data.len() as u64)?;
        let written = write_mem(c, ptr, &data);
        c.data_mut().register = data;
        written
    }

    pub fn set_return<H: Host>(
        c: &mut Caller<'_, Ctx<H>>,
        per_byte: u64,
        ptr: u32,
        len: u32,
    ) -> R<()> {
        let max = c.data().config.max_data_bytes;
        check_len(len, max, "return data")?;
        charge(c, per_byte * len as u64)?;
        let data = read_mem(c, ptr, len)?;
        if let Some(f) = c.data_mut().frames.last_mut() {
            f.ret = data;
        }
        Ok(())
    }

    pub fn storage_get<H: Host>(
        c: &mut Caller<'_, Ctx<H>>,
        per_byte: u64,
        key_ptr: u32,
        key_len: u32,
    ) -> R<i64> {
        let max = c.data().config.max_key_bytes;
        check_len(key_len, max, "storage key")?;
        charge(c, per_byte * key_len as u64)?;
        // The value goes into the register, whose capacity the store keeps too.
        let found = with_key(c, key_ptr, key_len, |data, contract, key| {
            let mut register = std::mem::take(&mut data.register);
            let found = data.host.storage_get(contract, key, &mut register);
            data.register = register;
            found
        })?;
        match found.map_err(fail)? {
            false => Ok(-1),
            true => {
                let len = c.data().register.len();
                charge(c, per_byte * len as u64)?;
                Ok(len as i64)
            }
        }
    }

    pub fn storage_set<H: Host>(
        c: &mut Caller<'_, Ctx<H>>,
        per_byte: u64,
        key_ptr: u32,
        key_len: u32,
        value_ptr: u32,
        value_len: u32,
    ) -> R<()> {
        deny_in_view(c, "write state")?;
        let (max_key, max_value) = (
            c.data().config.max_key_bytes,
            c.data().config.max_value_bytes,
        );
        check_len(key_len, max_key, "storage key")?;
        check_len(value_len, max_value, "storage value")?;
        charge(c, per_byte * (key_len as u64 + value_len as u64))?;
        // The key before the value: with both out of memory, the error names the key.
        let mut key = std::mem::take(&mut c.data_mut().key);
        read_mem_into(c, key_ptr, key_len, &mut key)?;
        let value = read_mem(c, value_ptr, value_len)?;
        let contract = frame(c)?.contract;
        let data = c.data_mut();
        let stored = data.host.storage_set(contract, &key, Some(value));
        data.key = key;
        stored.map_err(fail)
    }

    pub fn storage_remove<H: Host>(
        c: &mut Caller<'_, Ctx<H>>,
        per_byte: u64,
        key_ptr: u32,
        key_len: u32,
    ) -> R<()> {
        deny_in_view(c, "write state")?;
        let max = c.data().config.max_key_bytes;
        check_len(key_len, max, "storage key")?;
        charge(c, per_byte * key_len as u64)?;
        with_key(c, key_ptr, key_len, |data, contract, key| {
            data.host.storage_set(contract, key, None)
        })?
        .map_err(fail)
    }

    pub fn caller<H: Host>(c: &mut Caller<'_, Ctx<H>>, per_byte: u64) -> R<u32> {
        let bytes = borsh::to_vec(&frame(c)?.caller).map_err(|e| Error::new(e.to_string()))?;
        charge(c, per_byte * bytes.len() as u64)?;
        let len = bytes.len() as u32;
        c.data_mut().register = bytes;
        Ok(len)
    }

    pub fn self_hname<H: Host>(c: &mut Caller<'_, Ctx<H>>, _: u64) -> R<u32> {
        Ok(frame(c)?.contract.0)
    }

    pub fn chain_id<H: Host>(c: &mut Caller<'_, Ctx<H>>, per_byte: u64, out_ptr: u32) -> R<()> {
        charge(c, per_byte * 32)?;
        let id = c.data().host.chain_id();
        write_mem(c, out_ptr, &id.0)
    }

    pub fn block_index<H: Host>(c: &mut Caller<'_, Ctx<H>>, _: u64) -> R<u64> {
        Ok(c.data().host.block().index)
    }

    pub fn block_timestamp_ms<H: Host>(c: &mut Caller<'_, Ctx<H>>, _: u64) -> R<u64> {
        Ok(c.data().host.block().timestamp_ms)
    }

    pub fn random<H: Host>(c: &mut Caller<'_, Ctx<H>>, per_byte: u64, out_ptr: u32) -> R<()> {
        charge(c, per_byte * 32)?;
        let value = c.data_mut().host.random().map_err(fail)?;
        write_mem(c, out_ptr, &value)
    }

    pub fn transferred_sompi<H: Host>(c: &mut Caller<'_, Ctx<H>>, _: u64) -> R<u64> {
        Ok(frame(c)?.transferred_sompi)
    }

    pub fn balance_sompi<H: Host>(
        c: &mut Caller<'_, Ctx<H>>,
        per_byte: u64,
        agent_ptr: u32,
        agent_len: u32,
    ) -> R<u64> {
        charge(c, per_byte * agent_len as u64)?;
        let agent = decode_agent(c, agent_ptr, agent_len)?;
        c.data_mut().host.balance(&agent).map_err(fail)
    }

    pub fn transfer_sompi<H: Host>(
        c: &mut Caller<'_, Ctx<H>>,
        per_byte: u64,
        agent_ptr: u32,
        agent_len: u32,
        amount: u64,
    ) -> R<()> {
        deny_in_view(c, "move tokens")?;
        charge(c, per_byte * agent_len as u64)?;
        let to = decode_agent(c, agent_ptr, agent_len)?;
        let from = self_agent(c)?;
        c.data_mut().host.transfer(&from, &to, amount).map_err(fail)
    }

    pub fn withdraw_to_l1<H: Host>(
        c: &mut Caller<'_, Ctx<H>>,
        _: u64,
        key_ptr: u32,
        amount: u64,
    ) -> R<u64> {
        deny_in_view(c, "withdraw")?;
        let bytes = read_mem(c, key_ptr, 32)?;
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes);
        let from = self_agent(c)?;
        c.data_mut().host.withdraw(&from, key, amount).map_err(fail)
    }

    pub fn emit_event<H: Host>(
        c: &mut Caller<'_, Ctx<H>>,
        per_byte: u64,
        topic_ptr: u32,
        topic_len: u32,
        data_ptr: u32,
        data_len: u32,
    ) -> R<()> {
        deny_in_view(c, "emit events")?;
        let max = c.data().config.max_event_bytes;
        check_len(topic_len.saturating_add(data_len), max, "event")?;
        charge(c, per_byte * (topic_len as u64 + data_len as u64))?;
        let topic = String::from_utf8(read_mem(c, topic_ptr, topic_len)?).map_err(|_| {
            fail(vm_error(
                VmErrorCode::HostAbiMisuse,
                "event topic is not UTF-8",
            ))
        })?;
        let data = read_mem(c, data_ptr, data_len)?;
        let contract = frame(c)?.contract;
        c.data_mut().host.emit(Event {
            contract,
            topic,
            data,
        });
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn call<H: Host>(
        c: &mut Caller<'_, Ctx<H>>,
        per_byte: u64,
        kind: u32,
        target: u32,
        entry_point: u32,
        args_ptr: u32,
        args_len: u32,
        transfer: u64,
    ) -> R<u32> {
        let kind = match kind {
            0 => CallKind::Entry,
            1 => CallKind::View,
            other => {
                return Err(fail(vm_error(
                    VmErrorCode::HostAbiMisuse,
                    format!("call kind {other} is neither 0 (entry) nor 1 (view)"),
                )))
            }
        };
        if kind == CallKind::Entry {
            deny_in_view(c, "call an entry point")?;
        }
        if kind == CallKind::View && transfer > 0 {
            return Err(fail(vm_error(
                VmErrorCode::WriteInView,
                "a view call cannot carry tokens",
            )));
        }
        let max = c.data().config.max_data_bytes;
        check_len(args_len, max, "call arguments")?;
        charge(c, per_byte * args_len as u64)?;
        let args = read_mem(c, args_ptr, args_len)?;
        let target = Hname(target);
        let me = self_agent(c)?;
        let checkpoint = c.data_mut().host.checkpoint();
        let result = (|| {
            let gas_left = c.get_fuel().unwrap_or(0);
            // A core contract: the host runs it natively (and, for a deploy or an upgrade,
            // hands back the new code's `init` or `migrate` to run here).
            let core = c.data_mut().host.call_core(
                &me,
                target,
                kind,
                Hname(entry_point),
                &args,
                transfer,
                gas_left,
            );
            match core {
                None => {}
                Some(CoreCall::Done { result, gas_used }) => {
                    charge(c, gas_used)
                        .map_err(|_| vm_error(VmErrorCode::OutOfGas, "out of gas"))?;
                    return result;
                }
                Some(CoreCall::Run {
                    gas_used,
                    invocation,
                    entry,
                    ret,
                }) => {
                    charge(c, gas_used)
                        .map_err(|_| vm_error(VmErrorCode::OutOfGas, "out of gas"))?;
                    let frame = Frame {
                        contract: invocation.contract,
                        caller: invocation.caller,
                        kind: CallKind::Entry,
                        args: invocation.args,
                        transferred_sompi: 0,
                        ret: Vec::new(),
                        memory: None,
                    };
                    let door = match entry {
                        SpecialEntry::Init => Door::Deploy,
                        SpecialEntry::Migrate => Door::Upgrade,
                    };
                    return run_frame(
                        c,
                        &invocation.module,
                        frame,
                        invocation.function,
                        door,
                        false,
                    )
                    .map(|_| ret);
                }
            }
            let (module, first_load) = c.data_mut().host.load(target, gas_left)?;
            if transfer > 0 {
                let to = AgentId::Contract(ContractId {
                    chain: c.data().host.chain_id(),
                    hname: target,
                });
                c.data_mut().host.transfer(&me, &to, transfer)?;
            }
            let frame = Frame {
                contract: target,
                caller: me,
                kind,
                args,
                transferred_sompi: transfer,
                ret: Vec::new(),
                memory: None,
            };
            run_frame(
                c,
                &module,
                frame,
                Hname(entry_point),
                Door::Call,
                first_load,
            )
        })();
        match result {
            Ok(ret) => {
                charge(c, per_byte * ret.len() as u64)?;
                c.data_mut().register = ret;
                Ok(0)
            }
            // Running out of gas ends the whole request: the caller could not go on anyway.
            Err(e) if e.level == ErrorLevel::Vm && e.code == VmErrorCode::OutOfGas.code() => {
                Err(fail(e))
            }
            Err(e) => {
                c.data_mut().host.rollback(checkpoint);
                c.data_mut().register = borsh::to_vec(&e).map_err(|e| Error::new(e.to_string()))?;
                Ok(1)
            }
        }
    }

    pub fn abort<H: Host>(
        c: &mut Caller<'_, Ctx<H>>,
        _: u64,
        code: u32,
        msg_ptr: u32,
        msg_len: u32,
    ) -> R<()> {
        let bytes = read_mem(c, msg_ptr, msg_len.min(1024))?;
        let message = String::from_utf8_lossy(&bytes).into_owned();
        // Always the contract level, whatever the code: a contract cannot pose as the runtime
        // (defect 21 of the hardening review: code u32::MAX became request-level
        // `bad_arguments`). The SDK's argument-decoding failure is the contract-level
        // `CONTRACT_BAD_ARGUMENTS_CODE`.
        Err(fail(ReceiptError {
            level: ErrorLevel::Contract,
            code,
            message,
        }))
    }

    pub fn log<H: Host>(
        c: &mut Caller<'_, Ctx<H>>,
        per_byte: u64,
        msg_ptr: u32,
        msg_len: u32,
    ) -> R<()> {
        let len = msg_len.min(4096);
        charge(c, per_byte * len as u64)?;
        let bytes = read_mem(c, msg_ptr, len)?;
        let contract = frame(c)?.contract;
        c.data_mut()
            .host
            .log(contract, &String::from_utf8_lossy(&bytes));
        Ok(())
    }

    pub fn blake2b_256<H: Host>(
        c: &mut Caller<'_, Ctx<H>>,
        per_byte: u64,
        ptr: u32,
        len: u32,
        out_ptr: u32,
    ) -> R<()> {
        let max = c.data().config.max_data_bytes;
        check_len(len, max, "hash input")?;
        charge(c, per_byte * len as u64)?;
        let data = read_mem(c, ptr, len)?;
        let hash = wisp_core::blake2b_256(&data);
        write_mem(c, out_ptr, &hash.0)
    }

    pub fn gas_left<H: Host>(c: &mut Caller<'_, Ctx<H>>, _: u64) -> R<u64> {
        c.get_fuel()
    }

    /// `N` bytes of guest memory at `ptr`.
    fn read_array<H, const N: usize>(c: &Caller<'_, Ctx<H>>, ptr: u32) -> R<[u8; N]> {
        let bytes = read_mem(c, ptr, N as u32)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&bytes);
        Ok(out)
    }

    /// The fixed-size arguments of a secp256k1 check: a 32-byte message (hash), a 64-byte
    /// signature and a `K`-byte key.
    fn secp_args<H, const K: usize>(
        c: &Caller<'_, Ctx<H>>,
        (msg_ptr, sig_ptr, key_ptr): (u32, u32, u32),
    ) -> R<([u8; 32], [u8; 64], [u8; K])> {
        Ok((
            read_array(c, msg_ptr)?,
            read_array(c, sig_ptr)?,
            read_array(c, key_ptr)?,
        ))
    }

    pub fn verify_schnorr<H: Host>(
        c: &mut Caller<'_, Ctx<H>>,
        _: u64,
        msg_ptr: u32,
        sig_ptr: u32,
        key_ptr: u32,
    ) -> R<u32> {
        let (msg, sig, key) = secp_args::<H, 32>(c, (msg_ptr, sig_ptr, key_ptr))?;
        Ok(u32::from(crate::crypto::verify_schnorr(&msg, &sig, &key)))
    }

    pub fn verify_ecdsa<H: Host>(
        c: &mut Caller<'_, Ctx<H>>,
        _: u64,
        msg_ptr: u32,
        sig_ptr: u32,
        key_ptr: u32,
    ) -> R<u32> {
        let (msg, sig, key) = secp_args::<H, 33>(c, (msg_ptr, sig_ptr, key_ptr))?;
        Ok(u32::from(crate::crypto::verify_ecdsa(&msg, &sig, &key)))
    }

    pub fn verify_ed25519<H: Host>(
        c: &mut Caller<'_, Ctx<H>>,
        per_byte: u64,
        msg_ptr: u32,
        msg_len: u32,
        sig_ptr: u32,
        key_ptr: u32,
    ) -> R<u32> {
        let max = c.data().config.max_data_bytes;
        check_len(msg_len, max, "signed message")?;
        charge(c, per_byte * msg_len as u64)?;
        let msg = read_mem(c, msg_ptr, msg_len)?;
        let sig: [u8; 64] = read_array(c, sig_ptr)?;
        let key: [u8; 32] = read_array(c, key_ptr)?;
        Ok(u32::from(crate::crypto::verify_ed25519(&msg, &sig, &key)))
    }
}

macro_rules! ret_ty {
    () => {
        ()
    };
    ($t:ty) => {
        $t
    };
}

macro_rules! register_host_functions {
    ($( $(#[doc = $doc:literal])* fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?; base = $base:expr, per_byte = $per:expr; )*) => {
        /// Defines every ABI function in `linker`; the base gas of each is charged here, in one
        /// place, before its body runs.
        pub(crate) fn register_host_functions<H: Host>(linker: &mut Linker<Ctx<H>>) -> Result<(), wasmi::errors::LinkerError> {
            $(
                linker.func_wrap(
                    IMPORT_MODULE,
                    stringify!($name),
                    |mut caller: Caller<'_, Ctx<H>>, $($arg: $ty),*| -> Result<ret_ty!($($ret)?), Error> {
                        crate::runtime::settle_growth(&mut caller)?;
                        charge(&mut caller, $base)?;
                        imp::$name(&mut caller, $per, $($arg),*)
                    },
                )?;
            )*
            Ok(())
        }
    };
}
wisp_core::with_host_functions!(register_host_functions);
