import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as protobuf from 'protobufjs';
import { UserError } from '../errors';
import { frameRecord, readRecordEntries } from '../data/tfrecord';
import { ensureDir, toWriteError, withWriteErrors } from '../util/atomic-write';

/**
 * TensorBoard event files: a TFRecord stream of tensorflow.Event protos, written the TF1 way (one
 * `simple_value` per scalar), which TensorBoard and the originals' extract_accuracy both read.
 * Only the fields we write or read are declared; field numbers follow
 * tensorflow/core/util/event.proto and tensorflow/core/framework/summary.proto.
 */
const root = protobuf.Root.fromJSON({
  nested: {
    tensorflow: {
      nested: {
        Event: {
          oneofs: { what: { oneof: ['fileVersion', 'summary'] } },
          fields: {
            wallTime: { type: 'double', id: 1 },
            step: { type: 'int64', id: 2 },
            fileVersion: { type: 'string', id: 3 },
            summary: { type: 'Summary', id: 5 },
          },
        },
        Summary: { fields: { value: { rule: 'repeated', type: 'SummaryValue', id: 1 } } },
        SummaryValue: {
          oneofs: { value: { oneof: ['simpleValue', 'tensor'] } },
          fields: {
            tag: { type: 'string', id: 1 },
            simpleValue: { type: 'float', id: 2 },
            // TF2 writers (and tfjs-node's summary writer) put scalars in a tensor instead
            tensor: { type: 'TensorProto', id: 8 },
          },
        },
        TensorProto: {
          fields: {
            dtype: { type: 'int32', id: 1 },
            tensorContent: { type: 'bytes', id: 4 },
            floatVal: { rule: 'repeated', type: 'float', id: 5, options: { packed: true } },
            doubleVal: { rule: 'repeated', type: 'double', id: 6, options: { packed: true } },
          },
        },
      },
    },
  },
});
const EventType = root.lookupType('tensorflow.Event');

const DT_FLOAT = 1;
const DT_DOUBLE = 2;
export const FILE_VERSION = 'brain.Event:2';

interface EventMsg {
  wallTime?: number;
  step?: number | protobuf.Long;
  fileVersion?: string;
  summary?: { value?: Array<{ tag?: string; simpleValue?: number; tensor?: TensorMsg }> };
}
interface TensorMsg {
  dtype?: number;
  tensorContent?: Uint8Array;
  floatVal?: number[];
  doubleVal?: number[];
}

export interface ScalarEvent {
  wallTime: number;
  step: number;
  values: Array<{ tag: string; value: number }>;
}

/** TF's clean_tag: characters outside [A-Za-z0-9_./-] become `_`, leading slashes go. */
export function cleanTag(tag: string): string {
  return tag.replace(/[^A-Za-z0-9_./-]/g, '_').replace(/^\/+/, '');
}

/** Pending bytes past which scalar() writes through without waiting for flush(). */
const WRITE_THROUGH_BYTES = 1 << 20;

/**
 * Appends events to `<dir>/events.out.tfevents.<unix seconds>.<hostname>`. Records are buffered
 * until flush(), which writes them and fsyncs; an event file is a stream, so a crash can at most
 * leave a truncated last record, which readEventFile (and TensorBoard) skip. A write that fails
 * (a full disk) is cut back off the file, so the file keeps only whole records and later writes
 * append cleanly once there is room; the failure is a one-line UserError.
 */
export class EventWriter {
  readonly path: string;
  private fd: number | null;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes of whole records in the file. */
  private written = 0;

  constructor(dir: string) {
    withWriteErrors(dir, () => ensureDir(dir));
    const now = Date.now() / 1000;
    const base = `events.out.tfevents.${String(Math.floor(now)).padStart(10, '0')}.${os.hostname()}`;
    // Two writers started in the same second (a quick resume) must not clobber each other: 'wx'
    // refuses an existing name, and a numeric suffix still matches events.out.tfevents.*
    let fd: number | null = null;
    let p = '';
    for (let i = 0; fd === null; i++) {
      p = path.join(dir, i === 0 ? base : `${base}.${i}`);
      try {
        fd = fs.openSync(p, 'wx');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw toWriteError(e, p);
      }
    }
    this.fd = fd;
    this.path = p;
    try {
      this.append({ wallTime: now, step: 0, fileVersion: FILE_VERSION });
      this.flush();
    } catch (e) {
      // no room even for the header: leave no empty event file behind
      this.fd = null;
      try {
        fs.closeSync(fd);
        fs.rmSync(p, { force: true });
      } catch {
        // the write error is the one to report
      }
      throw e;
    }
  }

  scalar(tag: string, value: number, step: number): void {
    this.scalars(step, { [tag]: value });
  }

  /** One Event holding every value, as one TF summary op would write them. */
  scalars(step: number, values: Record<string, number>): void {
    if (!Number.isSafeInteger(step) || step < 0) throw new Error(`event step must be a non-negative integer, got ${step}`);
    const value = Object.entries(values).map(([tag, v]) => ({ tag: cleanTag(tag), simpleValue: v }));
    this.append({ wallTime: Date.now() / 1000, step, summary: { value } });
  }

  private append(ev: EventMsg): void {
    if (this.fd === null) throw new Error(`event writer for ${this.path} is closed`);
    const framed = frameRecord(EventType.encode(EventType.fromObject(ev)).finish());
    this.pending.push(framed);
    this.pendingBytes += framed.length;
    if (this.pendingBytes >= WRITE_THROUGH_BYTES) this.writePending();
  }

  private writePending(): void {
    if (this.fd === null || this.pending.length === 0) return;
    const fd = this.fd;
    const all = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    withWriteErrors(this.path, () => {
      try {
        let off = 0;
        while (off < all.length) off += fs.writeSync(fd, all, off, all.length - off, this.written + off);
      } catch (e) {
        // a record cut short here would read as damage once more records follow it
        try {
          fs.ftruncateSync(fd, this.written);
        } catch {
          // the write error below is the one to report
        }
        throw e;
      }
    });
    this.written += all.length;
  }

  flush(): void {
    if (this.fd === null) return;
    this.writePending();
    const fd = this.fd;
    withWriteErrors(this.path, () => fs.fsyncSync(fd));
  }

  close(): void {
    if (this.fd === null) return;
    this.flush();
    fs.closeSync(this.fd);
    this.fd = null;
  }
}

function int64ToNumber(v: number | protobuf.Long | undefined): number {
  if (v === undefined) return 0;
  if (typeof v === 'number') return v;
  return v.high * 4294967296 + (v.low >>> 0);
}

/** A scalar from a TF2-style tensor summary, or undefined for anything that is not one float. */
function tensorScalar(t: TensorMsg): number | undefined {
  if (t.dtype === DT_FLOAT) {
    if (t.floatVal && t.floatVal.length > 0) return t.floatVal[0];
    if (t.tensorContent && t.tensorContent.length >= 4) {
      return Buffer.from(t.tensorContent).readFloatLE(0);
    }
  } else if (t.dtype === DT_DOUBLE) {
    if (t.doubleVal && t.doubleVal.length > 0) return t.doubleVal[0];
    if (t.tensorContent && t.tensorContent.length >= 8) {
      return Buffer.from(t.tensorContent).readDoubleLE(0);
    }
  }
  return undefined;
}

/**
 * Every event of a file, in order, with its scalar values (simple_value, or a float scalar
 * tensor). A truncated final record, which a writer killed mid-append leaves, ends the read
 * quietly, as it does for TensorBoard; a CRC mismatch or an undecodable event is a UserError.
 */
export function readEventFile(file: string): ScalarEvent[] {
  const out: ScalarEvent[] = [];
  const records = readRecordEntries(file, {
    skipCorrupt: true,
    onCorrupt: (c) => {
      // readRecordEntries reports hitting end of file as 'truncated …'; anything else is damage
      if (!c.reason.startsWith('truncated')) {
        throw new UserError(`${file}: event record ${c.index} at byte ${c.offset} is corrupt (${c.reason}); the event file is damaged`);
      }
    },
  });
  for (const { data, index, offset } of records) {
    let ev: EventMsg;
    try {
      ev = EventType.decode(data) as unknown as EventMsg;
    } catch (e) {
      throw new UserError(`${file}: event record ${index} at byte ${offset} is not a tensorflow.Event (${(e as Error)?.message ?? String(e)})`);
    }
    const values: ScalarEvent['values'] = [];
    for (const v of ev.summary?.value ?? []) {
      // decoded messages keep defaults on the prototype (simpleValue 0 for a tensor summary), so
      // the member actually present is the one that is an own property
      const has = (k: string): boolean => Object.prototype.hasOwnProperty.call(v, k);
      const value = has('simpleValue') ? v.simpleValue : has('tensor') && v.tensor ? tensorScalar(v.tensor) : undefined;
      if (value !== undefined) values.push({ tag: v.tag ?? '', value });
    }
    out.push({ wallTime: ev.wallTime ?? 0, step: int64ToNumber(ev.step), values });
  }
  return out;
}
