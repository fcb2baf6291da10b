"""The chain: web3 per chain, Ocean's contract ABIs, order checks and provider fees."""
