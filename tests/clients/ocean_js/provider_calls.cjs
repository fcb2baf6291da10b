// One ocean.js ProviderInstance call against a Provider, unchanged: a JSON request on stdin,
// the call's result as JSON on the last line of stdout (ocean.js logs there too). Driven step
// by step by tests/clients/test_ocean_js.py.
const { ProviderInstance } = require('@oceanprotocol/lib')
const { ethers } = require('ethers')

async function main () {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  const r = JSON.parse(Buffer.concat(chunks).toString())
  const signer = new ethers.Wallet(r.key, new ethers.providers.JsonRpcProvider(r.rpc))

  const calls = {
    environments: () => ProviderInstance.getComputeEnvironments(r.provider),
    nonce: () => ProviderInstance.getNonce(r.provider, signer.address),
    initializeCompute: () =>
      ProviderInstance.initializeCompute(
        r.datasets, r.algorithm, r.env, r.validUntil, r.provider, signer.address
      ),
    computeStart: () =>
      ProviderInstance.computeStart(r.provider, signer, r.env, r.dataset, r.algorithm),
    computeStatus: () => ProviderInstance.computeStatus(r.provider, signer.address, r.jobId),
    getComputeResultUrl: () =>
      ProviderInstance.getComputeResultUrl(r.provider, signer, r.jobId, r.index),
    computeStop: () =>
      ProviderInstance.computeStop(r.did, signer.address, r.jobId, r.provider, signer),
    computeDelete: () => ProviderInstance.computeDelete(r.did, signer, r.jobId, r.provider)
  }

  const result = await calls[r.call]()
  process.stdout.write('\n' + JSON.stringify({ result: result ?? null }) + '\n')
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
