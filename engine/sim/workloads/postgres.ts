import { deriveSeed, Prng } from "../prng.ts";
import { fillKernelText, layout, pageOffset, region } from "./_layout.ts";
import {
  PAGE_SIZE,
  type Region,
  type Workload,
  type WorkloadWriter,
} from "./workload.ts";

/** PostgreSQL's block size (BLCKSZ): one buffer is two 4 KiB pages. */
export const PG_BLOCK = 8192;
/** `pd_pagesize_version`: block size 8192, layout version 4. */
export const PG_PAGESIZE_VERSION = PG_BLOCK | 4;
/** WAL page magic (`XLOG_PAGE_MAGIC` of PostgreSQL 16). */
export const PG_WAL_MAGIC = 0xd113;
/** Size of `PageHeaderData`. */
const PAGE_HEADER = 24;
/** pgbench_accounts tuple: 24-byte header + aid, bid, abalance, char(84) filler = 121 bytes. */
const TUPLE_LEN = 121;
/** Tuple slot, MAXALIGNed. */
const TUPLE_SLOT = 128;
/** Tuples per block at fillfactor 100 (pgbench gets 61 too). */
const TUPLES = Math.floor((PG_BLOCK - PAGE_HEADER) / (TUPLE_SLOT + 4));
/** Size of `XLogPageHeaderData`. */
const WAL_PAGE_HEADER = 24;
/** Share of shared buffers holding table blocks; the rest are free buffers (zero). */
const BUFFERS_USED = 0.8;
/** First LSN of the simulated WAL ring (pageaddr base). */
const LSN_BASE = 0x16b000000;

function regions(pageCount: number): Region[] {
  return layout(pageCount, [
    ["kernel", 0.02],
    ["shared_buffers", 0.25, 2],
    ["wal_buffers", 1 / 64, 2],
    ["pagecache", 0.2, 2],
  ]);
}

/** The constant part of a pgbench_accounts block: header, line pointers, tuple headers, filler. */
function heapTemplate(): Uint8Array {
  const block = new Uint8Array(PG_BLOCK);
  const view = new DataView(block.buffer);
  view.setUint16(10, 0x0004, true); // pd_flags: PD_ALL_VISIBLE
  view.setUint16(12, PAGE_HEADER + 4 * TUPLES, true); // pd_lower
  view.setUint16(14, PG_BLOCK - TUPLES * TUPLE_SLOT, true); // pd_upper
  view.setUint16(16, PG_BLOCK, true); // pd_special
  view.setUint16(18, PG_PAGESIZE_VERSION, true);
  for (let i = 0; i < TUPLES; i++) {
    const off = PG_BLOCK - (i + 1) * TUPLE_SLOT;
    // ItemIdData: lp_off:15, lp_flags:2 (LP_NORMAL = 1), lp_len:15.
    view.setUint32(
      PAGE_HEADER + 4 * i,
      off | (1 << 15) | (TUPLE_LEN << 17),
      true,
    );
    view.setUint32(off, 2, true); // t_xmin: FrozenTransactionId
    view.setUint16(off + 16, i + 1, true); // t_ctid offset
    view.setUint16(off + 18, 4, true); // t_infomask2: natts
    view.setUint16(off + 20, 0x0b00, true); // t_infomask: frozen, XMAX_INVALID
    view.setUint8(off + 22, 24); // t_hoff
    view.setUint8(off + 36, (85 << 1) | 1); // short varlena header of char(84)
    block.fill(0x20, off + 37, off + 37 + 84); // blank-padded filler
  }
  return block;
}

const HEAP_TEMPLATE = heapTemplate();

/** Table block number `blockNo` of pgbench_accounts, as loaded by `pgbench -i`. */
function writeHeapBlock(
  memory: Uint8Array,
  view: DataView,
  at: number,
  blockNo: number,
): void {
  memory.set(HEAP_TEMPLATE, at);
  view.setUint32(at, Math.floor(LSN_BASE / 2 ** 32), true); // pd_lsn.xlogid
  view.setUint32(at + 4, (LSN_BASE + blockNo * 64) >>> 0, true); // pd_lsn.xrecoff
  view.setUint16(at + 8, Math.imul(blockNo + 1, 0x9e3779b1) >>> 16, true); // pd_checksum
  for (let i = 0; i < TUPLES; i++) {
    const t = at + PG_BLOCK - (i + 1) * TUPLE_SLOT;
    const aid = blockNo * TUPLES + i + 1;
    view.setUint16(t + 12, blockNo >>> 16, true); // t_ctid block (hi, lo)
    view.setUint16(t + 14, blockNo & 0xffff, true);
    view.setInt32(t + 24, aid, true); // aid
    view.setInt32(t + 28, Math.floor((aid - 1) / 100000) + 1, true); // bid
  }
}

/** WAL writer over the ring: appends records with 8 KiB page headers, marks 4 KiB pages. */
class Wal {
  readonly #memory: Uint8Array;
  readonly #view: DataView;
  readonly #ring: Region;
  readonly #rng: Prng;
  readonly #record = new Uint8Array(256);
  readonly #recordView = new DataView(this.#record.buffer);
  /** Byte position in the WAL stream, relative to LSN_BASE. */
  pos: number;
  #prev = 0;

  constructor(memory: Uint8Array, ring: Region, rng: Prng, pos: number) {
    this.#memory = memory;
    this.#view = new DataView(
      memory.buffer,
      memory.byteOffset,
      memory.byteLength,
    );
    this.#ring = ring;
    this.#rng = rng;
    this.pos = pos;
  }

  /** Appends a heap-update record for (`block`, `slot`) of transaction `xid`; returns the end LSN. */
  append(
    xid: number,
    block: number,
    slot: number,
    balance: number,
    mark?: (pfn: number) => void,
  ): number {
    const ringBytes = this.#ring.count * PAGE_SIZE;
    if (ringBytes === 0) return LSN_BASE + this.pos;
    const r = this.#recordView;
    const len = 24 + 20 + 8 + 8 * this.#rng.below(12); // header, block ref, update data, new tuple bytes
    r.setUint32(0, len, true); // xl_tot_len
    r.setUint32(4, xid, true); // xl_xid
    r.setUint32(8, (LSN_BASE + this.#prev) >>> 0, true); // xl_prev (low)
    r.setUint32(12, Math.floor((LSN_BASE + this.#prev) / 2 ** 32), true);
    r.setUint8(16, 0x40); // xl_info: XLOG_HEAP_HOT_UPDATE
    r.setUint8(17, 10); // xl_rmid: RM_HEAP_ID
    r.setUint16(18, 0, true);
    r.setUint32(20, this.#rng.next(), true); // xl_crc
    r.setUint32(24, 1663, true); // spcOid (pg_default)
    r.setUint32(28, 16384, true); // dbOid
    r.setUint32(32, 16397, true); // relNumber (pgbench_accounts)
    r.setUint32(36, block, true);
    r.setUint32(40, slot, true);
    r.setInt32(44, balance, true);
    r.setUint32(48, xid, true);
    for (let i = 52; i < len; i += 4) {
      r.setUint32(i, this.#rng.next() & 0x00ff00ff, true);
    }
    const start = this.pos;
    this.#prev = start;
    let done = 0;
    let lastPage = -1;
    while (done < len) {
      const inRing = this.pos % ringBytes;
      if (this.pos % PG_BLOCK === 0) {
        // New WAL page: XLogPageHeaderData.
        const h = pageOffset(this.#ring.start) + inRing;
        this.#view.setUint16(h, PG_WAL_MAGIC, true); // xlp_magic
        this.#view.setUint16(h + 2, done > 0 ? 1 : 0, true); // xlp_info: XLP_FIRST_IS_CONTRECORD
        this.#view.setUint32(h + 4, 1, true); // xlp_tli
        this.#view.setUint32(h + 8, (LSN_BASE + this.pos) >>> 0, true); // xlp_pageaddr
        this.#view.setUint32(
          h + 12,
          Math.floor((LSN_BASE + this.pos) / 2 ** 32),
          true,
        );
        this.#view.setUint32(h + 16, done > 0 ? len - done : 0, true); // xlp_rem_len
        this.#view.setUint32(h + 20, 0, true);
        this.pos += WAL_PAGE_HEADER;
        continue;
      }
      const room = PG_BLOCK - (this.pos % PG_BLOCK);
      const n = Math.min(room, len - done);
      this.#memory.set(
        this.#record.subarray(done, done + n),
        pageOffset(this.#ring.start) + inRing,
      );
      done += n;
      const endPage = this.#ring.start +
        Math.floor((inRing + n - 1) / PAGE_SIZE);
      for (
        let p = this.#ring.start + Math.floor(inRing / PAGE_SIZE);
        p <= endPage;
        p++
      ) {
        if (p !== lastPage) mark?.(p);
        lastPage = p;
      }
      this.pos += n;
    }
    this.pos = Math.ceil(this.pos / 8) * 8; // records are MAXALIGNed
    return LSN_BASE + this.pos;
  }

  /** Where the writer starts: a fresh WAL page half-way round the ring. */
  static writerStart(ring: Region): number {
    return Math.floor((ring.count * PAGE_SIZE) / 2 / PG_BLOCK) * PG_BLOCK;
  }
}

/** Geometry shared by init and writer. */
function geometry(
  memory: Uint8Array,
): { rs: Region[]; buffers: Region; used: number } {
  const rs = regions(memory.length / PAGE_SIZE);
  const buffers = region(rs, "shared_buffers");
  return { rs, buffers, used: Math.floor((buffers.count / 2) * BUFFERS_USED) };
}

/**
 * `postgres`: a PostgreSQL server under a pgbench-like (TPC-B) load: 8 KiB
 * heap blocks in shared buffers, a WAL ring written sequentially, and the
 * OS page cache double-buffering table blocks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { postgres } from "./postgres.ts";
 *
 * const memory = new Uint8Array(64 << 20);
 * postgres.init(memory, 1);
 * assert.deepEqual(
 *   postgres.regions(memory.length / 4096).map((r) => r.name),
 *   ["kernel", "shared_buffers", "wal_buffers", "pagecache"],
 * );
 * ```
 */
export const postgres: Workload = {
  name: "postgres",
  summary:
    "PostgreSQL under pgbench: 8 KiB heap blocks, sequential WAL appends, double buffering",
  models:
    "PostgreSQL, one of the seed report's real applications, under pgbench's TPC-B-like " +
    "load. 25% of memory is shared_buffers (the usual sizing) in 8 KiB blocks (two pages each) " +
    "with real heap page structure (24-byte page header, line pointers, 121-byte " +
    "pgbench_accounts tuples from the end, 61 per block); 80% of buffers hold table blocks, the " +
    "rest are still free (zero). A 1/64 WAL ring holds XLOG pages (page headers, records that " +
    "cross pages). 20% is the OS page cache holding the table file, half of it copies of blocks " +
    "also in shared_buffers (PostgreSQL's double buffering, a real source of duplicate pages). " +
    "Each transaction appends a WAL record (sequential writes, the same WAL page dirtied many " +
    "times) and then updates one tuple in a random buffer block (its header's pd_lsn and the " +
    "tuple): small in-page changes, the case for delta compression.",
  dirtyRate: 2000,
  regions,
  init(memory: Uint8Array, seed: number): void {
    const { rs, buffers, used } = geometry(memory);
    fillKernelText(memory, region(rs, "kernel"), seed);
    const view = new DataView(
      memory.buffer,
      memory.byteOffset,
      memory.byteLength,
    );
    for (let b = 0; b < used; b++) {
      writeHeapBlock(memory, view, pageOffset(buffers.start + 2 * b), b);
    }
    const cache = region(rs, "pagecache");
    const first = Math.floor(used / 2);
    for (let j = 0; j < cache.count / 2; j++) {
      const block = first + j;
      const at = pageOffset(cache.start + 2 * j);
      if (block < used) {
        const src = pageOffset(buffers.start + 2 * block);
        memory.copyWithin(at, src, src + PG_BLOCK);
      } else writeHeapBlock(memory, view, at, block);
    }
    const ring = region(rs, "wal_buffers");
    const wal = new Wal(
      memory,
      ring,
      new Prng(deriveSeed(seed, 0x77616c69)),
      0,
    ); // "wali"
    const stop = Wal.writerStart(ring) - 512;
    for (let xid = 1000; wal.pos < stop; xid++) {
      wal.append(xid, xid % Math.max(1, used), xid % TUPLES, 0);
    }
  },
  writer(memory: Uint8Array, seed: number): WorkloadWriter {
    const { rs, buffers, used } = geometry(memory);
    const view = new DataView(
      memory.buffer,
      memory.byteOffset,
      memory.byteLength,
    );
    const rng = new Prng(deriveSeed(seed, 0x70677771)); // "pgwq"
    const ring = region(rs, "wal_buffers");
    const wal = new Wal(memory, ring, rng, Wal.writerStart(ring));
    let xid = 100000;
    return {
      step(mark): void {
        if (used === 0) return;
        xid++;
        const block = rng.below(used);
        const slot = rng.below(TUPLES);
        const at = pageOffset(buffers.start + 2 * block);
        const tuple = at + PG_BLOCK - (slot + 1) * TUPLE_SLOT;
        const balance = view.getInt32(tuple + 32, true) + rng.below(10001) -
          5000;
        // Write-ahead: the WAL record first, then the buffer.
        const lsn = wal.append(xid, block, slot, balance, mark);
        view.setUint32(tuple, xid, true); // t_xmin of the new version
        view.setUint16(tuple + 20, 0x0902, true); // t_infomask: HEAP_HASVARWIDTH|XMIN_COMMITTED|XMAX_INVALID
        view.setInt32(tuple + 32, balance, true);
        view.setUint32(at, Math.floor(lsn / 2 ** 32), true); // pd_lsn
        view.setUint32(at + 4, lsn >>> 0, true);
        view.setUint16(at + 8, rng.next() & 0xffff, true); // pd_checksum
        view.setUint32(at + 20, xid, true); // pd_prune_xid
        const head = buffers.start + 2 * block;
        mark(head);
        const tuplePage = head + Math.floor((tuple - at) / PAGE_SIZE);
        if (tuplePage !== head) mark(tuplePage);
      },
    };
  },
};
