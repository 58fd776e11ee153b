// Quickstart: deploy the example token, transfer, read a balance with its proof, and watch
// transfers — against any Wisp node (a devnet: `wisp devnet` prints the RPC address and the
// dev accounts' secret keys).
//
//   npm run build && node dist/examples/quickstart.js <rpc url> <secret key hex> <token .wasm> [recipient]
//
// The module comes from `wisp build contracts/token` (it prints the path).
import { readFileSync } from "node:fs";
import { createPublicClient, createWalletClient, getContract, LocalSigner, ContractError } from "../src/index.js";

const [rpc, secretKey, wasmPath, recipientArg] = process.argv.slice(2);
if (!rpc || !secretKey || !wasmPath) {
  console.error("usage: node dist/examples/quickstart.js <rpc url> <secret key hex> <token .wasm> [recipient address]");
  process.exit(2);
}

const publicClient = createPublicClient({ url: rpc });
const walletClient = createWalletClient({ publicClient, signer: new LocalSigner(secretKey) });
const me = await walletClient.address();
const recipient = recipientArg ?? me;
console.log(`chain ${(await publicClient.chainInfo()).name}, account ${me}`);

// Deploy: `init` arguments are encoded from the module's embedded interface.
const code = new Uint8Array(readFileSync(wasmPath));
const name = `quickstart_${Date.now().toString(36)}`;
const deployed = await (await walletClient.deploy({ name, code, initArgs: ["Quickstart Token", "QST", 8, 1_000_000n] })).wait();
console.log(`deployed ${name} in block ${deployed.blockIndex} for ${deployed.gasUsed} gas`);

// Watch transfers while we make one.
const unwatch = publicClient.watchEvents({
  contract: name,
  topic: "Transfer",
  onEvent: (e) => console.log(`event Transfer ${JSON.stringify(e.fields)} in block ${e.blockIndex}`),
});
await unwatch.ready;

const token = getContract({ contract: name, publicClient, walletClient });
const sent = await token.write.transfer({ to: recipient, amount: 250n });
console.log(`transfer: ${sent.receipt.status}, fee ${sent.receipt.feeSompi} sompi`);
console.log(`balance_of(recipient) = ${await token.read.balance_of([recipient])}`);

// A failure comes back as a typed error, named from the contract's interface.
try {
  await token.write.transfer({ to: recipient, amount: 10n ** 30n });
} catch (e) {
  if (!(e instanceof ContractError)) throw e;
  console.log(`refused: ${e.name} (code ${e.code}): ${e.docs}`);
}

// The account's base-token balance, proven against the block header's state root.
const { balance, block } = await publicClient.getVerifiedBalance(me);
console.log(`verified balance ${balance} sompi at block ${block.index}`);

await new Promise((r) => setTimeout(r, 500));
await unwatch();
