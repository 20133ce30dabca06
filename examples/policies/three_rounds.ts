/**
 * Exactly three live rounds, then switch over: the bulk pass and two passes
 * over what the guest dirtied meanwhile, whatever the rates say. A
 * deterministic policy for experiments and lab tests (the Xen lab checks
 * that libxenguest's save loop stopped where this said).
 *
 * @module
 */

import { codec, policy, when } from "../../mod.ts";

export default policy("three-rounds")
  .codec([codec.zero(), codec.raw()])
  // round is 0-based: "3 rounds finished" is true from round 2, so round 2
  // is the last one sent live.
  .switchover(when.rounds(3))
  .bandwidth("unlimited");
