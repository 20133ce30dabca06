/**
 * An unpaced link (as fast as the network and the codecs go): zero then
 * raw, switch over once under 32 MiB remain or after 20 rounds.
 *
 * @module
 */

import { codec, MiB, policy, when } from "../../mod.ts";

export default policy("unlimited")
  .codec([codec.zero(), codec.raw()])
  .switchover(when.any(when.remainingBelow(MiB(32)), when.rounds(20)))
  .bandwidth("unlimited");
