//! A small reader for the dynamic-linking facts of an ELF64 little-endian shared object:
//! architecture, `DT_NEEDED`, `DT_RUNPATH`/`DT_RPATH`, `DT_SONAME`, and the defined and undefined
//! dynamic symbols. It reads only the headers and the few sections it needs, so a 230 MB
//! `libleanshared.so` costs tens of megabytes of I/O, not the whole file.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::{ErrorCode, Result, ToolchainError};

const SHT_DYNAMIC: u32 = 6;
const SHT_DYNSYM: u32 = 11;
const DT_NEEDED: i64 = 1;
const DT_SONAME: i64 = 14;
const DT_RPATH: i64 = 15;
const DT_RUNPATH: i64 = 29;
const STB_WEAK: u8 = 2;
const STT_OBJECT: u8 = 1;
const STT_TLS: u8 = 6;

/// `e_machine` values this project meets.
pub const EM_X86_64: u16 = 62;
/// `e_machine` of 64-bit ARM.
pub const EM_AARCH64: u16 = 183;

/// An undefined dynamic symbol: something the object expects another library to provide.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct UndefinedSymbol {
    /// Symbol name without version suffix.
    pub name: String,
    /// Weak references may stay unresolved without failing the load.
    pub weak: bool,
}

/// Dynamic-linking facts of one shared object.
#[derive(Clone, Debug, Default)]
pub struct ElfDynamicInfo {
    /// `e_machine`, e.g. [`EM_X86_64`].
    pub machine: u16,
    /// `DT_SONAME`, if any.
    pub soname: Option<String>,
    /// `DT_NEEDED` entries in order.
    pub needed: Vec<String>,
    /// `DT_RUNPATH` entries (`$ORIGIN` not expanded).
    pub runpath: Vec<String>,
    /// `DT_RPATH` entries (`$ORIGIN` not expanded).
    pub rpath: Vec<String>,
    /// Names of the global and weak symbols the object defines (its exports).
    pub defined: BTreeSet<String>,
    /// The subset of `defined` that names data (`STT_OBJECT`/`STT_TLS`) rather than code: in a
    /// Lean library, the globals that hold nullary `@[export]` constants.
    pub defined_data: BTreeSet<String>,
    /// Symbols it needs from elsewhere.
    pub undefined: Vec<UndefinedSymbol>,
}

/// The name of an `e_machine` value for messages.
pub fn machine_name(machine: u16) -> String {
    match machine {
        EM_X86_64 => "x86_64".into(),
        EM_AARCH64 => "aarch64".into(),
        other => format!("machine {other}"),
    }
}

/// The `e_machine` of the running program's architecture.
pub fn host_machine() -> u16 {
    if cfg!(target_arch = "aarch64") {
        EM_AARCH64
    } else {
        EM_X86_64
    }
}

/// Reads the dynamic-linking facts of `path`.
pub fn read_dynamic_info(path: &Path) -> Result<ElfDynamicInfo> {
    let mut file = File::open(path).map_err(|e| ToolchainError::io(path, "cannot open", e))?;
    let invalid = |why: &str| {
        ToolchainError::new(
            ErrorCode::ElfInvalid,
            format!("{} is not a usable ELF shared object: {why}", path.display()),
            "rebuild the library for this platform (`lake build <lib>:shared`)",
        )
    };
    let header = read_at(&mut file, 0, 64).map_err(|_| invalid("file too short"))?;
    if &header[..4] != b"\x7fELF" {
        return Err(invalid("no ELF magic"));
    }
    if header[4] != 2 || header[5] != 1 {
        return Err(invalid("only 64-bit little-endian ELF is supported"));
    }
    let e_type = u16_at(&header, 16);
    if e_type != 3 {
        return Err(invalid("not a shared object (ET_DYN)"));
    }
    let machine = u16_at(&header, 18);
    let shoff = u64_at(&header, 40);
    let shentsize = u16_at(&header, 58) as u64;
    let shnum = u16_at(&header, 60) as u64;
    if shentsize != 64 || shnum == 0 {
        return Err(invalid("no section headers"));
    }
    let table = read_at(&mut file, shoff, (shentsize * shnum) as usize).map_err(|_| invalid("truncated section table"))?;
    let section = |i: u64| -> Section {
        let s = &table[(i * 64) as usize..(i * 64 + 64) as usize];
        Section { kind: u32_at(s, 4), offset: u64_at(s, 24), size: u64_at(s, 32), link: u32_at(s, 40) as u64 }
    };
    let mut info = ElfDynamicInfo { machine, ..Default::default() };
    // `.dynsym` and `.dynamic` share `.dynstr` (24 MB in the Lean runtime): read each string
    // table once.
    let mut string_tables: Vec<(u64, Vec<u8>)> = Vec::new();
    for i in 0..shnum {
        let sec = section(i);
        if sec.kind != SHT_DYNSYM && sec.kind != SHT_DYNAMIC {
            continue;
        }
        if sec.link >= shnum {
            return Err(invalid("section links to a missing string table"));
        }
        if !string_tables.iter().any(|(link, _)| *link == sec.link) {
            let strings = section(sec.link);
            let strtab = read_at(&mut file, strings.offset, strings.size as usize).map_err(|_| invalid("truncated string table"))?;
            string_tables.push((sec.link, strtab));
        }
        let strtab = &string_tables.iter().find(|(link, _)| *link == sec.link).expect("read above").1;
        let data = read_at(&mut file, sec.offset, sec.size as usize).map_err(|_| invalid("truncated section"))?;
        if sec.kind == SHT_DYNSYM {
            read_symbols(&data, strtab, &mut info);
        } else {
            read_dynamic(&data, strtab, &mut info);
        }
    }
    Ok(info)
}

struct Section {
    kind: u32,
    offset: u64,
    size: u64,
    link: u64,
}

fn read_symbols(data: &[u8], strtab: &[u8], info: &mut ElfDynamicInfo) {
    // Collected first and turned into sets in one go: `BTreeSet`'s `FromIterator` sorts and
    // builds the tree in bulk, several times faster than 230,000 inserts of names that share
    // long prefixes (the Lean runtime's `l_Lean_…`).
    let (mut defined, mut defined_data) = (Vec::new(), Vec::new());
    // Entry 0 is the reserved null symbol.
    for sym in data.chunks_exact(24).skip(1) {
        let name = c_str(strtab, u32_at(sym, 0) as usize);
        if name.is_empty() {
            continue;
        }
        let binding = sym[4] >> 4;
        let shndx = u16_at(sym, 6);
        if binding == 0 {
            continue; // local symbols do not take part in dynamic linking
        }
        if shndx == 0 {
            info.undefined.push(UndefinedSymbol { name, weak: binding == STB_WEAK });
        } else {
            if matches!(sym[4] & 0xf, STT_OBJECT | STT_TLS) {
                defined_data.push(name.clone());
            }
            defined.push(name);
        }
    }
    info.defined = sorted_set(std::mem::take(&mut info.defined).into_iter().chain(defined).collect());
    info.defined_data = sorted_set(std::mem::take(&mut info.defined_data).into_iter().chain(defined_data).collect());
}

/// A set built in bulk from names sorted here (unstable sort: duplicates are equal strings).
fn sorted_set(mut names: Vec<String>) -> BTreeSet<String> {
    names.sort_unstable();
    names.dedup();
    // Already sorted: `FromIterator` finds one run and builds the tree without comparing more.
    names.into_iter().collect()
}

fn read_dynamic(data: &[u8], strtab: &[u8], info: &mut ElfDynamicInfo) {
    for entry in data.chunks_exact(16) {
        let tag = u64_at(entry, 0) as i64;
        let value = u64_at(entry, 8) as usize;
        let split = |s: String| s.split(':').filter(|p| !p.is_empty()).map(str::to_string).collect::<Vec<_>>();
        match tag {
            0 => break,
            DT_NEEDED => info.needed.push(c_str(strtab, value)),
            DT_SONAME => info.soname = Some(c_str(strtab, value)),
            DT_RUNPATH => info.runpath.extend(split(c_str(strtab, value))),
            DT_RPATH => info.rpath.extend(split(c_str(strtab, value))),
            _ => {}
        }
    }
}

fn read_at(file: &mut File, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0; len];
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(&mut buf)?;
    Ok(buf)
}

fn c_str(table: &[u8], start: usize) -> String {
    let tail = table.get(start..).unwrap_or_default();
    // `CStr` finds the terminator with `memchr` (a byte loop here cost more than the I/O).
    let bytes = std::ffi::CStr::from_bytes_until_nul(tail).map_or(tail, |s| s.to_bytes());
    String::from_utf8_lossy(bytes).into_owned()
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
