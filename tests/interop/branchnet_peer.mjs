// A js-libp2p peer that joins a branchnet devnet and checks what it gets.
//
//   node branchnet_peer.mjs INPUT.json
//
// INPUT: {"seed": hex32, "psk_file": path, "dial": multiaddr, "chain_id": str,
//         "validators": [{"public_key": hex32, "power": int}], "timeout_ms": int}
//
// Stock js-libp2p: TCP, the standard private network (@libp2p/pnet, PSK v1),
// Noise, Yamux, gossipsub. It dials a validator, subscribes to the blocks
// topic, takes the first announcement [4, height, hash], asks for that block
// and its certificate over /branchnet/{chain}/sync/1 ([2, height, 1], and
// [3, hash] for the block alone), and verifies them itself from
// docs/PROTOCOL.md: block hash = sha256(header bytes), records_root,
// certificate signatures (Ed25519, domain "vote") and the 2/3 quorum.
// Prints one JSON object on stdout; exit 0 only if every check passed.

import { createHash, createPublicKey, verify } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { preSharedKey } from '@libp2p/pnet'
import { identify } from '@libp2p/identify'
import { gossipsub } from '@libp2p/gossipsub'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { byteStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { encode, decode } from '@msgpack/msgpack'

// libp2p 3 uses Promise.withResolvers (Node.js 22+); the same few lines on Node.js 20.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve, reject
    const promise = new this((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}

const input = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const started = Date.now()
const result = { ok: false, steps: [] }

function done (code) {
  result.elapsed_ms = Date.now() - started
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(code))
}

const watchdog = setTimeout(() => {
  result.error = `timed out after ${input.timeout_ms} ms`
  done(3)
}, input.timeout_ms)

const hex = (b) => Buffer.from(b).toString('hex')
const fromHex = (s) => new Uint8Array(Buffer.from(s, 'hex'))
const sha256 = (...parts) => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}
const step = (name, detail = {}) => result.steps.push({ name, ...detail })

// RFC 6962 Merkle tree hash (PROTOCOL.md §6).
function merkleRoot (leaves) {
  if (leaves.length === 0) return sha256(new Uint8Array(0))
  const hashes = leaves.map((l) => sha256(Uint8Array.of(0), l))
  const mth = (hs) => {
    if (hs.length === 1) return hs[0]
    let k = 1
    while (k * 2 < hs.length) k *= 2
    return sha256(Uint8Array.of(1), mth(hs.slice(0, k)), mth(hs.slice(k)))
  }
  return mth(hashes)
}

// Ed25519 public key from its 32 raw bytes (SPKI DER prefix + key).
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex')
const publicKey = (raw) => createPublicKey({ key: Buffer.concat([SPKI_ED25519, Buffer.from(raw)]), format: 'der', type: 'spki' })
const branchId = (raw) => sha256(Buffer.from('branchnet/branch-id'), raw).slice(0, 20)

// One request on a sync stream: frame = length:u32be payload; payload = kind:u8 id:u32be body.
async function request (bytes, requestId, body, signal) {
  const frame = new Uint8Array(9 + body.length)
  const view = new DataView(frame.buffer)
  view.setUint32(0, 5 + body.length)
  view.setUint8(4, 0)
  view.setUint32(5, requestId)
  frame.set(body, 9)
  await bytes.write(frame, { signal })
  const head = (await bytes.read({ bytes: 4, signal })).subarray()
  const length = new DataView(head.buffer, head.byteOffset, 4).getUint32(0)
  const payload = (await bytes.read({ bytes: length, signal })).subarray()
  const kind = payload[0]
  const id = new DataView(payload.buffer, payload.byteOffset, 5).getUint32(1)
  if (kind !== 1 || id !== requestId) {
    throw new Error(`unexpected frame kind ${kind} id ${id}: ${Buffer.from(payload.subarray(5)).toString()}`)
  }
  return decode(payload.subarray(5))
}

function verifyCertificate (cert, height, blockHash) {
  const [certHeight, round, certHash, signatures] = cert
  if (certHeight !== height) throw new Error('certificate height differs from the block')
  if (hex(certHash) !== hex(blockHash)) throw new Error('certificate is for another block')
  const byId = new Map(input.validators.map((v) => [hex(branchId(fromHex(v.public_key))), v]))
  const total = input.validators.reduce((s, v) => s + v.power, 0)
  let power = 0
  let previous = ''
  for (const [validatorId, signature] of signatures) {
    const id = hex(validatorId)
    if (id <= previous) throw new Error('certificate signers are not strictly ascending')
    previous = id
    const validator = byId.get(id)
    if (validator == null) throw new Error(`certificate signer ${id} is not a validator`)
    const payload = encode([2, height, round, certHash, validatorId])
    const signed = encode(['branchnet/v1', 'vote', input.chain_id, payload])
    if (!verify(null, signed, publicKey(fromHex(validator.public_key)), signature)) {
      throw new Error(`bad signature by ${id}`)
    }
    power += validator.power
  }
  if (!(power * 3 > total * 2)) throw new Error(`certificate power ${power} of ${total} is not a quorum`)
  return { signers: signatures.length, power, total, round }
}

async function main () {
  const privateKey = await generateKeyPairFromSeed('Ed25519', fromHex(input.seed))
  const node = await createLibp2p({
    privateKey,
    addresses: { listen: [] },
    transports: [tcp()],
    connectionProtector: preSharedKey({ psk: readFileSync(input.psk_file) }),
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      pubsub: gossipsub({
        globalSignaturePolicy: 'StrictSign',
        msgIdFn: (msg) => sha256(msg.data),
        allowPublishToZeroTopicPeers: true
      })
    }
  })
  result.peer_id = node.peerId.toString()
  const blocksTopic = `/branchnet/${input.chain_id}/blocks/1`
  const announcement = new Promise((resolve) => {
    node.services.pubsub.addEventListener('message', (evt) => {
      if (evt.detail.topic !== blocksTopic) return
      const [type, height, hash] = decode(evt.detail.data)
      if (type === 4) resolve({ height, hash, from: evt.detail.from?.toString() })
    })
  })
  node.services.pubsub.subscribe(blocksTopic)

  const signal = AbortSignal.timeout(input.timeout_ms)
  const connection = await node.dial(multiaddr(input.dial), { signal })
  step('connected', { remote: connection.remotePeer.toString() })

  const announced = await announcement
  step('announcement', { height: announced.height, hash: hex(announced.hash), from: announced.from })

  const stream = await node.dialProtocol(connection.remotePeer, `/branchnet/${input.chain_id}/sync/1`, { signal })
  const bytes = byteStream(stream, { maxBufferSize: 32 * 1024 * 1024 })
  const status = await request(bytes, 1, encode([1]), signal)
  step('status', { height: status[1][0] })

  const [code, blocks] = await request(bytes, 2, encode([2, announced.height, 1]), signal)
  if (code !== 0 || blocks.length !== 1) throw new Error(`no block ${announced.height}: ${code}`)
  const [blockBytes, certBytes] = blocks[0]
  const [header, records, evidence] = decode(blockBytes)
  // The header is the first element of the block array (after the fixarray byte 0x93);
  // re-encoding it must give the very bytes it was sent as, or the hash means nothing.
  const headerBytes = encode(header)
  if (blockBytes[0] !== 0x93 || hex(blockBytes.subarray(1, 1 + headerBytes.length)) !== hex(headerBytes)) {
    throw new Error('header is not canonically encoded')
  }
  const blockHash = sha256(headerBytes)
  if (hex(blockHash) !== hex(announced.hash)) throw new Error('block hash differs from the announcement')
  if (header[1] !== input.chain_id || header[2] !== announced.height) throw new Error('wrong chain or height')
  if (hex(merkleRoot(records)) !== hex(header[6])) throw new Error('records_root does not match the records')
  if (hex(merkleRoot(evidence.map((e) => encode(e)))) !== hex(header[7])) throw new Error('evidence_root mismatch')
  step('block', { height: header[2], hash: hex(blockHash), records: records.length })

  const cert = verifyCertificate(decode(certBytes), announced.height, blockHash)
  step('certificate', cert)

  const [code3, single] = await request(bytes, 3, encode([3, announced.hash]), signal)
  if (code3 !== 0 || hex(single) !== hex(blockBytes)) throw new Error('block by hash differs')
  step('block_by_hash')

  await stream.close()
  await node.stop()
  result.ok = true
  result.verified = { height: announced.height, block_hash: hex(blockHash), signers: cert.signers }
}

main().then(() => { clearTimeout(watchdog); done(0) }, (err) => {
  clearTimeout(watchdog)
  result.error = `${err?.name ?? 'Error'}: ${err?.message ?? err}`
  done(1)
})
