/**
 * The policy builder: a migration policy written as a chain of calls.
 *
 * The builder is immutable: every method returns a new {@link Policy} and
 * leaves the one it was called on as it was, so a base policy can be shared
 * and varied. Calling a method again replaces that field. Nothing is checked
 * here; {@link compile} checks everything and names the field that failed.
 *
 * @module
 */

import type { Decision, Plan, RoundStats } from "../engine/plan.ts";
import { _BRAND, _isBranded } from "./_brand.ts";
import { compile } from "./compile.ts";
import type { CodecChainInput } from "./codec_spec.ts";
import type { Condition } from "./conditions.ts";

/** Chooses the codec chain for the round about to run. */
export type CodecChooser = (stats: RoundStats) => CodecChainInput;

/** The low-level decision: after each round, continue, switch over or abort. */
export type DecideFn = (stats: RoundStats) => Decision;

/** A link rate: bytes per second, `null` or `"unlimited"` for unpaced, or a string such as `"1Gbit"`. */
export type BandwidthInput = number | string | null;

/** GPU options of a policy; unset fields keep their earlier or default values. */
export interface GpuOptions {
  /** Pages per GPU dispatch (default 8192). */
  readonly batch?: number;
  /** Which device encodes (default `"auto"`: a GPU when one is present). */
  readonly prefer?: "gpu" | "cpu" | "auto";
  /** Fail instead of falling back to the CPU when there is no GPU (default `false`). */
  readonly require?: boolean;
}

/** What a policy says, field by field, before compilation; unset fields take defaults. */
export interface PolicySpec {
  /** The policy's name, shown in reports. */
  readonly name: string;
  /** A fixed chain, or a function choosing one per round. */
  readonly codec?: CodecChainInput | CodecChooser;
  /** When to switch over. */
  readonly switchover?: Condition;
  /** When to give up. */
  readonly abortIf?: Condition;
  /** The low-level form, instead of `switchover` and `abortIf`. */
  readonly decide?: DecideFn;
  /** Link pacing. */
  readonly bandwidth?: BandwidthInput;
  /** GPU settings. */
  readonly gpu: GpuOptions;
  /** Pages per wire frame. */
  readonly batchPages?: number;
  /** Channels: Workers encoding in parallel, each with its own stream of frames. */
  readonly channels?: number;
  /** Hard bound on live rounds. */
  readonly maxRounds?: number;
  /** How long the source waits for the receiver before it gives up. */
  readonly deadlines?: DeadlinesInput;
  /** Resume after a lost link during pre-copy. */
  readonly resume?: ResumeInput;
}

/** How a policy resumes after a lost link ({@link Policy.resume}). */
export interface ResumeInput {
  /** Most milliseconds from losing the link to the resumed session (required; at most a day). */
  readonly grace: number;
  /** Most reconnections tried within the grace (default 3, at most 100). */
  readonly attempts?: number;
}

/** Deadlines as a policy states them (milliseconds); unset ones keep their defaults. */
export interface DeadlinesInput {
  /** Most milliseconds for each receiver answer and each write (default 60 000). */
  readonly reply?: number;
  /** Most milliseconds from pausing the VM to READY; past it the VM resumes on the source (default: no bound). */
  readonly downtime?: number;
}

/**
 * An immutable migration policy under construction; start one with {@link policy}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { codec, compile, Gbit, MiB, policy, when } from "@hakobu/hakobu";
 *
 * const p = policy("fast")
 *   .codec([codec.zero(), codec.raw()])
 *   .switchover(when.any(when.remainingBelow(MiB(64)), when.rounds(30)))
 *   .bandwidth(Gbit(1));
 * const plan = compile(p);
 * assert.equal(plan.name, "fast");
 * assert.equal(plan.bandwidth, 125_000_000);
 * ```
 */
export class Policy {
  readonly #spec: PolicySpec;

  /** Marks policies across copies of this module, see {@link isPolicy}. */
  readonly [_BRAND] = true;

  /**
   * Starts a policy; {@link policy} is the short form.
   *
   * @param name The policy's name.
   * @param spec Fields to start from (used by the builder methods).
   */
  constructor(name: string, spec: Omit<PolicySpec, "name"> = { gpu: {} }) {
    this.#spec = Object.freeze({
      ...spec,
      gpu: Object.freeze({ ...spec.gpu }),
      name,
    });
  }

  #with(patch: Partial<PolicySpec>): Policy {
    const { name, ...rest } = { ...this.#spec, ...patch };
    return new Policy(name, rest);
  }

  /**
   * Everything the policy says so far, as data.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { policy } from "@hakobu/hakobu";
   *
   * assert.equal(policy("p").maxRounds(10).spec.maxRounds, 10);
   * ```
   */
  get spec(): PolicySpec {
    return this.#spec;
  }

  /**
   * The policy's name.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { policy } from "@hakobu/hakobu";
   *
   * assert.equal(policy("p").name, "p");
   * ```
   */
  get name(): string {
    return this.#spec.name;
  }

  /**
   * The codec chain: fixed, or chosen per round by a function of the round's
   * stats. `raw` is appended when the chain does not end with it.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { codec, compile, policy, roundStats, when } from "@hakobu/hakobu";
   *
   * const plan = policy("p")
   *   .codec((s) => s.round === 0 ? [codec.zero(), codec.raw()] : codec.raw())
   *   .switchover(when.rounds(30))
   *   .compile();
   * const round1 = plan.codecsFor(roundStats({ round: 1 }));
   * assert.deepEqual(round1, [{ name: "raw" }]);
   * ```
   */
  codec(chain: CodecChainInput | CodecChooser): Policy {
    return this.#with({ codec: chain });
  }

  /**
   * When to stop pre-copying and switch over (pause the VM, send the rest).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MiB, policy, roundStats, when } from "@hakobu/hakobu";
   *
   * const plan = policy("p")
   *   .switchover(when.any(when.remainingBelow(MiB(64)), when.rounds(30)))
   *   .compile();
   * assert.equal(
   *   plan.decide(roundStats({ remainingBytes: MiB(8) })),
   *   "switchover",
   * );
   * ```
   */
  switchover(condition: Condition): Policy {
    return this.#with({ switchover: condition });
  }

  /**
   * When to give up and leave the VM running on the source; checked before
   * the switchover condition.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { minutes, policy, roundStats, when } from "@hakobu/hakobu";
   *
   * const plan = policy("p")
   *   .switchover(when.rounds(30))
   *   .abortIf(when.elapsedAbove(minutes(10)))
   *   .compile();
   * assert.equal(plan.decide(roundStats({ elapsedMs: minutes(11) })), "abort");
   * ```
   */
  abortIf(condition: Condition): Policy {
    return this.#with({ abortIf: condition });
  }

  /**
   * The low-level form, like libxenguest's precopy_policy: a function that
   * answers after each round. Cannot be combined with `switchover`/`abortIf`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { policy, roundStats } from "@hakobu/hakobu";
   *
   * const plan = policy("p")
   *   .decide((s) => s.round >= 5 ? "switchover" : "continue")
   *   .compile();
   * assert.equal(plan.decide(roundStats({ round: 5 })), "switchover");
   * ```
   */
  decide(fn: DecideFn): Policy {
    return this.#with({ decide: fn });
  }

  /**
   * Link pacing in bytes per second; `null` or `"unlimited"` for an unpaced
   * link; strings are parsed as by `parseBandwidth` (e.g. `"100Mbit"`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Gbit, policy, when } from "@hakobu/hakobu";
   *
   * const plan = policy("p").bandwidth(Gbit(1)).switchover(when.rounds(30))
   *   .compile();
   * assert.equal(plan.bandwidth, 125_000_000); // bytes per second
   * ```
   */
  bandwidth(rate: BandwidthInput): Policy {
    return this.#with({ bandwidth: rate });
  }

  /**
   * GPU settings, merged into the earlier ones.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { policy, when } from "@hakobu/hakobu";
   *
   * const plan = policy("p").gpu({ batch: 4096, prefer: "gpu" })
   *   .switchover(when.rounds(30)).compile();
   * assert.deepEqual(plan.gpu, { batch: 4096, prefer: "gpu", require: false });
   * ```
   */
  gpu(options: GpuOptions): Policy {
    return this.#with({ gpu: { ...this.#spec.gpu, ...options } });
  }

  /**
   * Non-zero pages per batch — one BATCH frame, compressed as a whole by
   * lz4 or zstd (1 to 7680, default 256: about 1 MiB, enough for a
   * compressor to reach a whole stream's ratio). Zero pages ride along
   * almost free.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { policy } from "@hakobu/hakobu";
   *
   * assert.equal(policy("p").batchPages(512).spec.batchPages, 512);
   * ```
   */
  batchPages(pages: number): Policy {
    return this.#with({ batchPages: pages });
  }

  /**
   * Channels (1 to 64, default one per core): Workers that encode, and on
   * the receiver decode, in parallel, each an ordered stream of its own
   * share of the pages, as QEMU's multifd channels.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { policy } from "@hakobu/hakobu";
   *
   * assert.equal(policy("p").channels(4).spec.channels, 4);
   * ```
   */
  channels(n: number): Policy {
    return this.#with({ channels: n });
  }

  /**
   * Hard bound on live rounds (default 64); a policy switches over when it is reached.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { policy } from "@hakobu/hakobu";
   *
   * assert.equal(policy("p").maxRounds(100).spec.maxRounds, 100);
   * ```
   */
  maxRounds(rounds: number): Policy {
    return this.#with({ maxRounds: rounds });
  }

  /**
   * How long the source waits for the receiver before it gives up, aborts
   * and lets the VM run on: `reply` for each answer and each write
   * (default 1 minute), `downtime` from pausing the VM to the receiver's
   * READY (default no bound beyond `reply`). A stop-and-copy that takes
   * longer than `downtime` — a link gone silent, a receiver stuck — resumes
   * the VM on the source.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ms, policy, seconds, when } from "@hakobu/hakobu";
   *
   * const plan = policy("p")
   *   .deadlines({ downtime: ms(500), reply: seconds(30) })
   *   .switchover(when.rounds(30))
   *   .compile();
   * assert.deepEqual(plan.deadlines, { replyMs: 30_000, downtimeMs: 500 });
   * ```
   */
  deadlines(deadlines: DeadlinesInput): Policy {
    return this.#with({ deadlines });
  }

  /**
   * Resumes a migration whose link is lost during pre-copy instead of
   * failing it: the source keeps the VM running, reconnects (up to
   * `attempts` times within `grace`) to the same receiver session, which
   * only the same source identity can take on, and sends only the pages the
   * receiver does not hold in their latest version. The receiver keeps the
   * session for `grace` at most (or its own shorter limit). A link lost at
   * stop-and-copy still aborts and resumes the VM on the source.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { policy, seconds, when } from "@hakobu/hakobu";
   *
   * const plan = policy("p")
   *   .resume({ grace: seconds(30), attempts: 5 })
   *   .switchover(when.rounds(30))
   *   .compile();
   * assert.deepEqual(plan.resume, { graceMs: 30_000, attempts: 5 });
   * ```
   */
  resume(resume: ResumeInput): Policy {
    return this.#with({ resume });
  }

  /**
   * Checks the policy and compiles it into the engine's plan; same as `compile(this)`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { policy, when } from "@hakobu/hakobu";
   *
   * const plan = policy("p").switchover(when.rounds(30)).compile();
   * assert.equal(plan.maxRounds, 64); // the default
   * ```
   *
   * @throws {PolicyError} naming the field that failed, the value and the fix.
   */
  compile(): Plan {
    return compile(this);
  }
}

/**
 * Starts a policy.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isPolicy, policy, when } from "@hakobu/hakobu";
 *
 * // A policy file's default export:
 * const p = policy("default").switchover(when.rounds(30));
 * assert.ok(isPolicy(p));
 * ```
 */
export function policy(name: string): Policy {
  return new Policy(name);
}

/**
 * Whether a value is a policy builder, also one made by another copy of
 * this module (e.g. a policy file importing hakobu from elsewhere).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isPolicy, policy } from "@hakobu/hakobu";
 *
 * assert.equal(isPolicy(policy("p")), true);
 * assert.equal(isPolicy({ name: "p" }), false);
 * ```
 */
export function isPolicy(value: unknown): value is Policy {
  return value instanceof Policy || _isBranded(value);
}
