// Measures how smoothly the page draws while it is loaded: the time between animation
// frames (a frame that comes k vsync periods after the previous one means k - 1 frames
// were dropped) and how many rows reached the screen. The browser test and the
// benchmark script (tests/browser/) start and stop it through window.workbench.meter.

const VSYNC_MS = 1000 / 60;

export interface FrameReport {
  durationMs: number;
  frames: number;
  droppedFrames: number;
  longestFrameMs: number;
  /** Frames that took longer than 50 ms: the page felt stuck for a moment. */
  framesOver50ms: number;
  rowsDrawn: number;
  rowsPerSecond: number;
}

export class FrameMeter {
  private times: number[] = [];
  private running = false;
  private drawnAtStart = 0;
  private drawnNow = 0;
  private drawn: () => number = () => 0;

  start(drawn: () => number): void {
    this.times = [];
    this.drawn = drawn;
    this.drawnAtStart = this.drawnNow = drawn();
    this.running = true;
    const tick = (t: number) => {
      if (!this.running) return;
      this.times.push(t);
      this.drawnNow = this.drawn();
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }

  stop(): FrameReport {
    this.running = false;
    // The last frame's sample may have been taken before the view drew in that frame
    // (animation-frame callbacks run in the order they were asked for): read it again.
    this.drawnNow = this.drawn();
    const t = this.times;
    let dropped = 0;
    let longest = 0;
    let over50 = 0;
    for (let i = 1; i < t.length; i++) {
      const gap = t[i] - t[i - 1];
      longest = Math.max(longest, gap);
      if (gap > 50) over50++;
      dropped += Math.max(0, Math.round(gap / VSYNC_MS) - 1);
    }
    const durationMs = t.length > 1 ? t[t.length - 1] - t[0] : 0;
    const rowsDrawn = this.drawnNow - this.drawnAtStart;
    return {
      durationMs: Math.round(durationMs),
      frames: t.length,
      droppedFrames: dropped,
      longestFrameMs: Math.round(longest * 10) / 10,
      framesOver50ms: over50,
      rowsDrawn,
      rowsPerSecond: durationMs > 0 ? Math.round((rowsDrawn * 1000) / durationMs) : 0,
    };
  }
}
