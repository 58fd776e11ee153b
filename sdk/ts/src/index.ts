/**
 * `@wisp/client`: a TypeScript client for Wisp chains.
 *
 * - {@link createPublicClient}: every `wisp_*` read, live blocks and events, proofs verified locally.
 * - {@link createWalletClient} with a {@link Signer} ({@link LocalSigner}): signed requests.
 * - {@link getContract}: `read` / `simulate` / `write` from a contract's interface.
 * - The codec, ids, addresses and structures the node uses, byte for byte.
 * @module
 */
export * from "./bytes.js";
export * from "./hash.js";
export * from "./address.js";
export * from "./ids.js";
export * from "./types.js";
export * from "./codec.js";
export * from "./structs.js";
export * from "./proof.js";
export * from "./errors.js";
export * from "./signer.js";
export * from "./transport.js";
export * from "./public.js";
export * from "./wallet.js";
export * from "./contract.js";
export * from "./wasm.js";
