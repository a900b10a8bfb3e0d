// What extract prints: a line per frame in input order (failures on stderr, numbered like the
// rest), a status line with elapsed time for long frames, and the summary.
import type { BatchEvent, BatchSummary, InputItem, OutputOptions } from '../batch';
import { frameName } from '../batch';

const LONG_FRAME_PIXELS = 2_000_000; // frames this big get progress lines when stderr is not a terminal
const TICK_MS = 1000;

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;
export const gb = (bytes: number): string => (bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : mb(bytes));
const secs = (ms: number): string => `${(ms / 1000).toFixed(0)} s`;

/** ' (ERR_FILM_...)' for our errors with a code, so scripts can tell them apart. */
function codeOf(error: Error): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('ERR_FILM_') ? ` (${code})` : '';
}

export class Reporter {
  readonly #index = new Map<InputItem, number>();
  readonly #total: number;
  readonly #single: boolean;
  readonly #tty = Boolean(process.stderr.isTTY);
  readonly #maxSide: number;
  readonly #lines = new Map<number, { out?: string; err?: string }>();
  #next = 0;
  #status = '';
  #current?: { label: string; started: number; pixels: number; what: string; band?: { band: number; of: number } };
  #timer?: NodeJS.Timeout;
  #mpPerSecond = 0; // measured on this run's frames, for the time-left estimate
  readonly #scaledSaid = new Set<InputItem>();

  #bytes = 0;

  /** `estimate`: the bytes the run is estimated to write, shown with the progress. */
  constructor(items: InputItem[], readonly output: OutputOptions, maxSide: number, readonly estimate = 0) {
    items.forEach((item, i) => this.#index.set(item, i));
    this.#total = items.length;
    this.#single = items.length === 1;
    this.#maxSide = maxSide;
  }

  #label(e: { item: InputItem; frame: number | null }): string {
    const frame = e.frame === null ? '' : ` frame ${frameName(e.frame)}`;
    return `[${this.#index.get(e.item)! + 1}/${this.#total}] ${e.item.source}${frame}`;
  }

  event(e: BatchEvent): void {
    switch (e.type) {
      case 'decoded': {
        if (e.redo) this.#note(`${this.#label(e)}: its output was made with other options (${e.redo}): made again`);
        if (e.scaled && e.original) {
          this.#note(`${this.#label(e)}: ${e.original.width}x${e.original.height} scaled to ${e.width}x${e.height} (--max-side ${this.#maxSide})`);
        } else if (!e.original && this.#maxSide > 0 && Math.max(e.width, e.height) === this.#maxSide && !this.#scaledSaid.has(e.item)) {
          this.#scaledSaid.add(e.item);
          this.#note(`${e.item.source}: frames scaled to ${e.width}x${e.height} (--max-side ${this.#maxSide})`);
        }
        break;
      }
      case 'extracting':
        this.#progress(e, `extracting ${(e.pixels / 1e6).toFixed(1)} MP${e.band ? `, band ${e.band.band}/${e.band.of}` : ''}`, e.pixels,
          e.band !== undefined && e.band.band > 1, e.band);
        break;
      case 'writing':
        if (this.#current) this.#progress(e, `writing level ${e.level} (${e.index}/${e.of})`, this.#current.pixels, true);
        break;
      case 'written': {
        this.#bytes += e.bytes;
        const m = e.meta;
        if (e.ms.extract > 0) this.#mpPerSecond = (m.padded.width * m.padded.height) / 1e6 / (e.ms.extract / 1000);
        const size = `${m.width}x${m.height}${m.original ? ` (scaled from ${m.original.width}x${m.original.height})` : ''}, ` +
          `padded to ${m.padded.width}x${m.padded.height}`;
        const times = `decode ${e.ms.decode.toFixed(0)} ms, extract ${e.ms.extract.toFixed(0)} ms, write ${e.ms.write.toFixed(0)} ms (${mb(e.bytes)})`;
        let out = `${this.#label(e)}: ${size}; ${times} -> ${e.dir}`;
        if (this.#single && e.frame === null) {
          out += Object.entries(m.shapes).map(([name, shape]) => `\n  ${name.replace('level', 'level ')}: [${shape.join(', ')}]`).join('');
        }
        // in place and complete, but --fsync could not flush its folder: said, not counted as failed
        const err = e.syncError ? `film-features: ${this.#label(e)}: written, but flushing its folder failed (it may not survive a power cut): ${e.syncError.message}` : undefined;
        this.#settle(e.seq, { out, err });
        break;
      }
      case 'skipped':
        this.#settle(e.seq, { out: `${this.#label(e)}: complete output exists, skipped -> ${e.dir}` });
        break;
      case 'failed':
        this.#settle(e.seq, { err: `film-features: ${this.#label(e)}: ${e.error.message}${codeOf(e.error)}` });
        break;
    }
  }

  /** Progress for one frame: a ticking status line on a terminal; lines for big frames otherwise. */
  #progress(e: { item: InputItem; frame: number | null }, what: string, pixels: number, same = false, band?: { band: number; of: number }): void {
    const label = this.#label(e);
    if (!same || !this.#current || this.#current.label !== label) this.#current = { label, started: performance.now(), pixels, what };
    this.#current.what = what;
    this.#current.band = band;
    if (this.#tty) {
      this.#tick();
      this.#timer ??= setInterval(() => this.#tick(), TICK_MS).unref();
    } else if (pixels >= LONG_FRAME_PIXELS) {
      console.error(`${label}: ${what}`);
    }
  }

  #tick(): void {
    const c = this.#current;
    if (!c) return;
    const elapsed = performance.now() - c.started;
    let left = '';
    if (c.band && c.band.band > 1) { // bands take about the same time each
      left = `, about ${secs((elapsed / (c.band.band - 1)) * (c.band.of - c.band.band + 1))} left`;
    } else if (this.#mpPerSecond > 0 && c.what.startsWith('extracting')) {
      const total = (c.pixels / 1e6 / this.#mpPerSecond) * 1000;
      left = total > elapsed ? `, about ${secs(total - elapsed)} left` : '';
    }
    this.#setStatus(`${c.label}: ${c.what}, ${secs(elapsed)}${left}${this.#written()}`);
  }

  /** '; 1.2 of ~4.5 GB written' once there is an estimate. */
  #written(): string {
    return this.estimate > 0 ? `; ${gb(this.#bytes)} of ~${gb(this.estimate)} written` : '';
  }

  #setStatus(text: string): void {
    const cols = process.stderr.columns || 100;
    this.#status = text.length > cols - 1 ? `...${text.slice(text.length - cols + 4)}` : text;
    process.stderr.write(`\r\x1b[2K${this.#status}`);
  }

  /** Prints above the status line. */
  #print(stream: 'out' | 'err', line: string): void {
    if (this.#tty && this.#status) process.stderr.write('\r\x1b[2K');
    if (stream === 'out') console.log(line);
    else console.error(line);
    if (this.#tty && this.#status) process.stderr.write(this.#status);
  }

  #note(line: string): void {
    this.#print('err', `film-features: ${line}`);
  }

  /** Frames finish out of order when jobs > 1; their lines are printed in input order. */
  #settle(seq: number, lines: { out?: string; err?: string }): void {
    this.#lines.set(seq, lines);
    for (let l = this.#lines.get(this.#next); l; l = this.#lines.get(this.#next)) {
      this.#lines.delete(this.#next++);
      if (l.out) this.#print('out', l.out);
      if (l.err) this.#print('err', l.err);
    }
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#tty && this.#status) process.stderr.write('\r\x1b[2K');
    this.#status = '';
  }

  finish(s: BatchSummary): void {
    this.close();
    const rate = s.written > 0 ? `${s.framesPerSecond.toFixed(2)} images/s` : 'no images written';
    const parts = [`${s.written} written in ${s.seconds.toFixed(1)} s (${rate})`, `${s.failed.length} failed`];
    if (s.skipped > 0) parts.push(`${s.skipped} skipped (output exists)`);
    const estimated = this.estimate > 0 ? ` (estimated ${mb(this.estimate)})` : '';
    console.log(`${parts.join(', ')}; ${mb(s.bytes)} in ${this.output.out}${estimated}`);
  }
}
