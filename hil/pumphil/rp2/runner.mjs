// The emulated RP2040 board of pumphil.rp2: the official MicroPython rp2 firmware (vendored in
// ./firmware) on rp2040js (npm, pinned 1.4.1 in package.json: the patches below use its internals).
//
// usage: node runner.mjs --uf2 FW.uf2 --bootrom BOOTROM.mjs [--fs FS.img] [--serial-port N]
//                        [--speed X] [--console-log PATH] [--plant] [--timeout S]
//   --fs           littlefs image placed at the rp2 filesystem offset (absent: erased flash; the
//                  rp2 port then formats it at boot)
//   --serial-port  TCP port on 127.0.0.1 for the USB-CDC bridge (0: any free port)
//   --speed        virtual time may run at most X times wall time, plus what `advance` grants
//                  (0: unlimited). A device idling for its host would otherwise skip hours ahead.
//   --plant        ADC reads of channels 0 and 2 and pump strokes (GP2 rising) are answered by the
//                  controller (lockstep: the chip is paused until it answers)
//   --timeout      wall seconds after which the runner reports and exits (never a stuck CI)
//
// Control channel: JSON lines. Commands on stdin, events on stdout (one object per line):
//   {"cmd":"advance","ms":N}            let virtual time run N ms ahead of the pacing; answered
//                                       by {"ev":"advanced","sim_ms":T} once it got there
//   {"cmd":"adc","ch":C,"raw":R}        static 12-bit value of ADC channel C (non-plant channels)
//   {"cmd":"pin","pin":P,"value":V}     drive input pin P; {"cmd":"press","pin":P,"ms":M} pulls
//                                       it low for M virtual ms (a button)
//   {"cmd":"link","out":O,"in":I}       input I follows output O (a feedback wire)
//   {"cmd":"power","on":false}          power cut: the chip stops, the flash is kept
//   {"cmd":"power","on":true,"off_ms":N} power back after N virtual ms: a power-on reset
//   {"cmd":"dump","path":P}             write the filesystem region to P -> {"ev":"dumped"}
//   {"cmd":"status"}                    -> {"ev":"status", sim_ms, resets, flash, ...}
//   {"cmd":"reply","raw":R} / {"cmd":"reply","ok":B}   answer to a plant request
//   {"cmd":"quit"}
// Events: ready {port}, usb {connected}, reset {why, sim_ms}, adc_read {ch, sim_ms},
//   stroke {sim_ms}, advanced, dumped, status, timeout, error {msg}.
//
// rp2040js 1.4.1 lacks four things the firmware needs; this runner adds them:
//   1. flash writes: a SPI-NOR command model behind the SSI and the QSPI chip select, so the boot
//      ROM's flash_range_erase/program (rp2.Flash, littlefs) really change the flash;
//   2. watchdog expiry resets the chip (fresh core and peripherals, same flash, REASON and
//      SCRATCH kept as on silicon; rp2040js would only log and re-fire its alarm);
//   3. the USB OUT endpoint is armed only when the host has data (rp2040js answers every arm at
//      once with an empty packet: an interrupt storm that never lets the core sleep);
//   4. pacing (--speed, advance): virtual time is bounded while the host thinks.
import fs from 'node:fs';
import net from 'node:net';
import readline from 'node:readline';
import { pathToFileURL } from 'node:url';
import { Simulator, USBCDC, ConsoleLogger, LogLevel, BasePeripheral, GPIOPinState } from 'rp2040js';
import { decodeBlock } from 'uf2';

// ---- options ------------------------------------------------------------------------------------
const opt = {};
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i].replace(/^--/, '');
    if (k === 'plant') opt.plant = true;
    else opt[k] = argv[++i];
  }
}
const FLASH_SIZE = 2 * 1024 * 1024;        // RPI_PICO: W25Q16JV, 2 MiB
const FS_BASE = 0xa0000;                   // rp2 v1.28 RPI_PICO: the last 1408 KiB are littlefs
const FS_SIZE = 1408 * 1024;
const PLANT_ADC = new Set([0, 2]);         // pressure sensor (GP26) and cell voltage (GP28)
const PIN_STEP = 2, PIN_FEEDBACK = 3;      // pumpfw.board.PIN_MOTOR_STEP / PIN_MOTOR_FEEDBACK
const speed = Number(opt.speed ?? 1);
const timeoutS = Number(opt.timeout ?? 600);
const wall0 = Date.now();
const { bootromB1 } = await import(pathToFileURL(opt.bootrom).href);

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const consoleLog = opt['console-log'] ? fs.openSync(opt['console-log'], 'a') : null;
const logLine = (text) => { if (consoleLog !== null) fs.writeSync(consoleLog, `\n[rp2 runner] ${text}\n`); };

// ---- the flash chip -------------------------------------------------------------------------------
const flash = new Uint8Array(FLASH_SIZE).fill(0xff);
{
  const uf2 = fs.readFileSync(opt.uf2);
  for (let off = 0; off + 512 <= uf2.length; off += 512) {
    const { flashAddress, payload } = decodeBlock(uf2.subarray(off, off + 512));
    flash.set(payload, flashAddress - 0x10000000);
  }
  if (opt.fs) flash.set(fs.readFileSync(opt.fs), FS_BASE);
}
const flashOps = { programs: 0, erases: 0 };

// A W25Q-style SPI NOR flash as the boot ROM's flash routines drive it: one command per chip
// select, the first byte the opcode, then a 24-bit address for program/read/erase.
class SpiNor {
  constructor(mem) { this.mem = mem; this.op = -1; this.n = 0; this.addr = 0; }
  // addresses wrap at the chip's size (the array behind it may be larger)
  select() { this.op = -1; this.n = 0; this.addr = 0; }
  deselect() {
    const erase = { 0x20: 0x1000, 0x52: 0x8000, 0xd8: 0x10000 }[this.op];
    if (erase && this.n >= 4) {
      const start = (this.addr & ~(erase - 1)) % FLASH_SIZE;
      this.mem.fill(0xff, start, start + erase);
      flashOps.erases++;
    }
    if (this.op === 0x02 && this.n > 4) flashOps.programs++;
    this.op = -1;
  }
  transfer(b) {
    if (this.op < 0) { this.op = b; this.n = 1; return 0; }
    const addressed = this.op === 0x02 || this.op === 0x03 || this.op === 0x0b || this.op in { 0x20: 1, 0x52: 1, 0xd8: 1 };
    if (addressed && this.n < 4) { this.addr = ((this.addr << 8) | b) & 0xffffff; this.n++; return 0; }
    const i = this.n - 4;
    this.n++;
    switch (this.op) {
      case 0x02: { // page program: bits only go 1 -> 0; the address wraps within its 256-B page
        const a = ((this.addr & ~0xff) | ((this.addr + i) & 0xff)) % FLASH_SIZE;
        this.mem[a] &= b;
        return 0;
      }
      case 0x03: return this.mem[(this.addr + i) % FLASH_SIZE];
      case 0x0b: return i === 0 ? 0 : this.mem[(this.addr + i - 1) % FLASH_SIZE]; // one dummy byte
      case 0x9f: return [0xef, 0x40, 0x15][this.n - 2] ?? 0; // JEDEC id: Winbond W25Q16JV
      default: return 0; // status registers: never busy; unique id: zeros
    }
  }
}
const nor = new SpiNor(flash);

function attachFlash(mcu) {
  // the SSI's data register talks to the chip while the QSPI chip select is driven low
  let selected = false;
  const rx = [];
  const ssi = mcu.peripherals[0x18000];
  const ssiWrite = ssi.writeUint32.bind(ssi), ssiRead = ssi.readUint32.bind(ssi);
  ssi.writeUint32 = (off, v) => {
    if (off === 0x60) { const r = selected ? nor.transfer(v & 0xff) : 0; if (rx.length < 16) rx.push(r); return; }
    if (off === 0x08 && !(v & 1)) rx.length = 0; // disabling the SSI flushes its FIFOs
    ssiWrite(off, v);
  };
  ssi.readUint32 = (off) => {
    if (off === 0x60) return rx.length ? rx.shift() : 0;
    if (off === 0x24) return rx.length;
    return ssiRead(off);
  };
  class IoQspi extends BasePeripheral {
    constructor(rp2040) { super(rp2040, 'IO_QSPI'); this.regs = new Uint32Array(12); }
    readUint32(off) { return off < 48 ? this.regs[off >> 2] : 0; }
    writeUint32(off, v) {
      if (off >= 48) return;
      this.regs[off >> 2] = v;
      if (off === 0x0c) { // GPIO_QSPI_SS_CTRL: OUTOVER = 2 drives the chip select low
        const low = ((v >> 8) & 3) === 2;
        if (low && !selected) nor.select();
        if (!low && selected) nor.deselect();
        selected = low;
      }
    }
  }
  mcu.peripherals[0x40018] = new IoQspi(mcu);
}

// ---- the board ------------------------------------------------------------------------------------
let sim = null, mcu = null, cdc = null;
let simBaseNs = 0;          // virtual ns before the current chip's clock started (resets, cuts)
let grantedNs = 0;          // virtual time granted by `advance` on top of the pacing
let advanceTarget = null;   // ns the pending `advance` waits for
let powered = false, usbConnected = false, resets = 0;
let blocked = false;        // a plant request is outstanding: the chip waits for the answer
let pendingReply = null;
const toDevice = [];        // host bytes not yet in the CDC FIFO
let heldRead = null;        // an OUT-endpoint arm held until there is host data
let client = null;          // the TCP client of the USB-CDC bridge
const adcStatic = [0, 0, 0, 0, 0];
const links = [];           // [out, in]
let pinInputs = {};         // pin -> 0|1 driven by the controller

const simNs = () => simBaseNs + (sim ? sim.clock.nanos : 0);
const simMs = () => Math.floor(simNs() / 1e6);

function deliverHostBytes() {
  if (!cdc) return;
  let k = 0;
  while (toDevice.length && !cdc.txFIFO.full && k < 64) { cdc.sendSerialByte(toDevice.shift()); k++; }
  if (heldRead && cdc.txFIFO.itemCount > 0) { const r = heldRead; heldRead = null; r(); }
}

function powerOn({ reason = 0, scratch = null } = {}) {
  sim = new Simulator();
  mcu = sim.rp2040;
  mcu.loadBootrom(bootromB1);       // reset() erases the flash array: load the flash after it
  mcu.logger = new ConsoleLogger(LogLevel.Error);
  mcu.flash.set(flash);             // the chip's XIP view; saveFlash() copies it back
  nor.mem = mcu.flash;
  attachFlash(mcu);
  const wd = mcu.peripherals[0x40058];
  wd.reason = reason;
  if (scratch) wd.scratchData.set(scratch);
  wd.onWatchdogTrigger = () => {
    // stop its periodic alarm first: left running, rp2040js re-fires it for ever
    wd.alarm.enable = false; wd.timer.enable = false; wd.enable = false;
    const why = wd.reason === 2 ? 'force' : 'watchdog';
    const keep = wd.scratchData.slice();
    resets++;
    logLine(`chip reset (${why}) at ${(simNs() / 1e9).toFixed(3)} s`);
    emit({ ev: 'reset', why, sim_ms: simMs() });
    restart(() => powerOn({ reason: wd.reason, scratch: keep }));
  };
  for (let c = 0; c < adcStatic.length; c++) mcu.adc.channelValues[c] = adcStatic[c];
  mcu.adc.onADCRead = (ch) => {
    mcu.adc.currentChannel = ch;
    if (opt.plant && PLANT_ADC.has(ch)) {
      const adc = mcu.adc;
      request({ ev: 'adc_read', ch, sim_ms: simMs() }, (msg) => {
        adc.channelValues[ch] = Math.max(0, Math.min(4095, msg.raw | 0));
        adc.sampleAlarm.schedule(adc.sampleTime * 1000);
      });
      return;
    }
    mcu.adc.sampleAlarm.schedule(mcu.adc.sampleTime * 1000);
  };
  for (const [p, v] of Object.entries(pinInputs)) mcu.gpio[p].setInputValue(!!v);
  for (const [o, i] of links) linkPins(o, i);
  if (opt.plant) {
    const gpio = mcu.gpio;
    gpio[PIN_STEP].addListener((state, old) => {
      if (state === GPIOPinState.High && old !== GPIOPinState.High) {
        request({ ev: 'stroke', sim_ms: simMs() }, (msg) => gpio[PIN_FEEDBACK].setInputValue(!!msg.ok));
      } else if (state !== GPIOPinState.High && old === GPIOPinState.High) {
        gpio[PIN_FEEDBACK].setInputValue(false);
      }
    });
  }
  usbConnected = false;
  heldRead = null;
  cdc = new USBCDC(mcu.usbCtrl);
  cdc.onDeviceConnected = () => { usbConnected = true; emit({ ev: 'usb', connected: true, sim_ms: simMs() }); };
  const arm = mcu.usbCtrl.onEndpointRead;
  mcu.usbCtrl.onEndpointRead = (ep, size) => {
    if (ep === cdc.outEndpoint && cdc.txFIFO.itemCount === 0) { heldRead = () => arm(ep, size); return; }
    arm(ep, size);
  };
  cdc.onSerialData = (buf) => {
    const data = Buffer.from(buf);
    if (client) client.write(data);
    if (consoleLog !== null) fs.writeSync(consoleLog, data);
  };
  mcu.core.PC = 0x10000000;
  powered = true;
  schedule();
}

function linkPins(o, i) {
  mcu.gpio[o].addListener((state) => mcu.gpio[i].setInputValue(state === GPIOPinState.High));
}

function saveFlash() { if (mcu) flash.set(mcu.flash.subarray(0, FLASH_SIZE)); }

function restart(boot) {
  // called from inside an instruction: finish it, then replace the chip
  const ns = simNs();
  saveFlash();
  powered = false;
  blocked = false; pendingReply = null;
  toDevice.length = 0;
  setImmediate(() => { simBaseNs = ns; sim = null; boot(); });
}

function request(event, onReply) {
  blocked = true;
  pendingReply = onReply;
  emit(event);
}

// ---- execution ----------------------------------------------------------------------------------
// Like rp2040js's Simulator.execute, plus: host bytes are handed over before the core sleeps, a
// plant request pauses the chip, and virtual time stays within the pacing budget.
const CYCLE_NS = 8; // 125 MHz
let timer = null;
function schedule(delay = 0) { if (timer === null) timer = setTimeout(() => { timer = null; run(); }, delay); }

function budgetNs() {
  if (!speed) return Infinity;
  return speed * (Date.now() - wall0) * 1e6 + grantedNs - simNs();
}

function run() {
  if (!powered || blocked || !sim) return;
  const { rp2040, clock } = sim;
  const core = rp2040.core;
  let budget = budgetNs();
  if (budget <= 0) { checkAdvance(); schedule(1); return; }
  const mySim = sim;
  let idle = false;   // asleep with nothing that can wake it but host input or `advance`
  for (let i = 0; i < 200000 && budget > 0 && !blocked && powered && sim === mySim; i++) {
    if (core.waiting) {
      if (toDevice.length) deliverHostBytes();
      // asleep until the next alarm; with none scheduled, time still passes up to the budget
      // (or the pending advance), and without either only host input can wake the chip
      let dn = clock.nextAlarm ? clock.nanosToNextAlarm : budget;
      if (advanceTarget !== null) dn = Math.min(dn, Math.max(0, advanceTarget - simNs()));
      dn = Math.min(dn, budget);
      if (!Number.isFinite(dn) || (dn === 0 && !clock.nextAlarm)) { idle = true; break; }
      clock.tick(dn); budget -= dn; i += dn / 1000;
      if (advanceTarget !== null && simNs() >= advanceTarget) break;
    } else {
      const c = core.executeInstruction();
      clock.tick(c * CYCLE_NS); budget -= c * CYCLE_NS;
    }
  }
  checkAdvance();
  if (powered && !blocked && sim === mySim && !idle) schedule(0);
}

function checkAdvance() {
  if (advanceTarget !== null && simNs() >= advanceTarget) {
    advanceTarget = null;
    emit({ ev: 'advanced', sim_ms: simMs() });
  }
}

// ---- the USB-CDC bridge -----------------------------------------------------------------------------
const server = net.createServer((sock) => {
  if (client) client.destroy(); // one host at a time, like a serial port; a new one takes over
  client = sock;
  sock.setNoDelay(true);
  sock.on('data', (d) => {
    if (!powered) return; // an unpowered chip hears nothing
    for (const b of d) toDevice.push(b);
    deliverHostBytes();
    schedule(0);
  });
  sock.on('close', () => { if (client === sock) client = null; });
  sock.on('error', () => {});
});

// ---- control channel --------------------------------------------------------------------------------
function handle(msg) {
  switch (msg.cmd) {
    case 'reply': {
      const fn = pendingReply;
      pendingReply = null;
      blocked = false;
      if (fn && sim) fn(msg);
      schedule(0);
      break;
    }
    case 'advance':
      grantedNs += msg.ms * 1e6;
      advanceTarget = simNs() + msg.ms * 1e6;
      schedule(0);
      break;
    case 'adc':
      adcStatic[msg.ch] = msg.raw;
      if (mcu) mcu.adc.channelValues[msg.ch] = msg.raw;
      break;
    case 'pin':
      pinInputs[msg.pin] = msg.value;
      if (mcu && powered) mcu.gpio[msg.pin].setInputValue(!!msg.value);
      schedule(0);
      break;
    case 'press': {
      if (!mcu || !powered) break;
      const pin = mcu.gpio[msg.pin];
      pin.setInputValue(false);
      const me = sim;
      sim.clock.createAlarm(() => { if (sim === me) pin.setInputValue(true); }).schedule((msg.ms ?? 50) * 1e6);
      schedule(0);
      break;
    }
    case 'link':
      links.push([msg.out, msg.in]);
      if (mcu) linkPins(msg.out, msg.in);
      break;
    case 'power':
      if (!msg.on && powered) {
        logLine(`power cut at ${(simNs() / 1e9).toFixed(3)} s`);
        const ns = simNs();
        saveFlash();
        powered = false; blocked = false; pendingReply = null; toDevice.length = 0;
        if (advanceTarget !== null) { advanceTarget = null; emit({ ev: 'advanced', sim_ms: simMs() }); }
        simBaseNs = ns; sim = null;
        emit({ ev: 'power', on: false, sim_ms: simMs() });
      } else if (msg.on && !powered) {
        simBaseNs += (msg.off_ms ?? 0) * 1e6;
        grantedNs += (msg.off_ms ?? 0) * 1e6;
        logLine(`power on at ${(simNs() / 1e9).toFixed(3)} s`);
        powerOn(); // power-on reset: REASON 0, scratch registers cleared
        emit({ ev: 'power', on: true, sim_ms: simMs() });
      }
      break;
    case 'dump':
      if (powered) saveFlash();
      fs.writeFileSync(msg.path, flash.subarray(FS_BASE, FS_BASE + FS_SIZE));
      emit({ ev: 'dumped', path: msg.path });
      break;
    case 'status':
      emit({ ev: 'status', sim_ms: simMs(), wall_s: (Date.now() - wall0) / 1000, resets, powered,
             usb: usbConnected, flash: flashOps });
      break;
    case 'quit':
      shutdown(0);
      break;
    default:
      emit({ ev: 'error', msg: `unknown command ${JSON.stringify(msg)}` });
  }
}

function shutdown(code) {
  if (consoleLog !== null) fs.closeSync(consoleLog);
  server.close();
  if (client) client.destroy();
  process.exit(code);
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (!line.trim()) return;
  let msg;
  try { msg = JSON.parse(line); } catch { emit({ ev: 'error', msg: `not JSON: ${line}` }); return; }
  handle(msg);
}).on('close', () => shutdown(0)); // the controller went away: never outlive it

// (setTimeout holds at most 2**31-1 ms, ~24.8 days; longer runs are unlimited)
if (timeoutS * 1000 < 2 ** 31) setTimeout(() => { logLine(`wall timeout ${timeoutS} s`); emit({ ev: 'timeout' }); shutdown(3); }, timeoutS * 1000).unref();

server.listen(Number(opt['serial-port'] ?? 0), '127.0.0.1', () => {
  emit({ ev: 'ready', port: server.address().port });
  powerOn();
});
