//! The lean.h port against the real Lean 4.35.0 runtime: layouts, IO result shapes, allocation
//! compatibility (the runtime frees and reallocates what Rust built), reference counts reaching
//! zero (observed through finalizers), multi-threaded objects, closures and thread attachment.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use capnp_lean_leanrt::{self as lean, abi, ExternalClass, InitMode, IoResult, LeanRuntime, Obj};

type Raw = *mut abi::LeanObject;

fn runtime() -> Option<&'static LeanRuntime> {
    static RT: OnceLock<Option<&'static LeanRuntime>> = OnceLock::new();
    *RT.get_or_init(|| {
        let install = capnp_lean_toolchain::test_support::runtime_or_skip(env!("CARGO_MANIFEST_DIR"))?;
        let rt = LeanRuntime::open(&install.runtime_library).expect("runtime opens");
        rt.initialize(InitMode::RuntimeModule).expect("runtime initializes");
        Some(rt)
    })
}

macro_rules! require_runtime {
    () => {
        match runtime() {
            Some(rt) => (rt, rt.attach_current_thread()),
            None => return,
        }
    };
}

/// A value whose drops are counted, to observe finalizers.
struct Counted(&'static AtomicUsize);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counted_class() -> &'static ExternalClass<Counted> {
    static CLASS: OnceLock<ExternalClass<Counted>> = OnceLock::new();
    CLASS.get_or_init(ExternalClass::register)
}

unsafe fn sym<T: Copy>(rt: &LeanRuntime, name: &str) -> T {
    // SAFETY: forwarded to the caller, who names the prototype.
    unsafe { rt.symbol::<T>(name) }.unwrap_or_else(|| panic!("runtime lacks {name}"))
}

#[test]
fn runtime_reports_lean_4_35_0_after_initialization() {
    let (rt, _t) = require_runtime!();
    assert_eq!(rt.lean_version(), Some((4, 35, 0)));
    assert!(rt.is_initialized());
}

#[test]
fn io_function_returns_one_field_ok_constructor_without_world_argument() {
    let (rt, _t) = require_runtime!();
    // SAFETY: `IO FilePath` in 4.35: no world argument, returns an IO result.
    let app_path: unsafe extern "C" fn() -> Raw = unsafe { sym(rt, "lean_io_app_path") };
    // SAFETY: the function returns an owned IO result object.
    let result = unsafe { Obj::from_raw(app_path()) };
    let header = result.header().expect("a constructor");
    assert_eq!((header.tag, header.other, header.rc), (0, 1, 1), "ok = tag 0 with one object field");
    let value = result.ctor_get_owned(0);
    assert_eq!(value.tag(), abi::STRING as usize);
    let exe = std::env::current_exe().unwrap().canonicalize().unwrap();
    assert_eq!(lean::string_str(&value), exe.to_str().unwrap());
}

#[test]
fn io_error_is_tag_one_holding_an_io_error_rendered_by_lean() {
    let (rt, _t) = require_runtime!();
    // SAFETY: `IO.FS.removeFile : FilePath → IO Unit`, argument borrowed.
    let remove: unsafe extern "C" fn(Raw) -> Raw = unsafe { sym(rt, "lean_io_remove_file") };
    let path = lean::mk_string("/nonexistent-capnp-lean/file");
    // SAFETY: `path` is a live string lent for the call; the result is owned.
    let result = unsafe { IoResult::from_raw(remove(path.as_ptr())) };
    assert!(!result.is_ok());
    assert_eq!(result.as_obj().ctor_num_objs(), 1);
    let err = result.into_result().unwrap_err();
    assert!(err.error.tag() <= abi::MAX_CTOR_TAG as usize, "IO.Error is a constructor");
    assert!(err.message.contains("/nonexistent-capnp-lean/file"), "{}", err.message);
    assert!(err.message.contains("no such file"), "{}", err.message);
}

#[test]
fn base_io_function_returns_its_value_unwrapped() {
    let (rt, _t) = require_runtime!();
    // SAFETY: `IO.getEnv : String → BaseIO (Option String)`, argument borrowed.
    let getenv: unsafe extern "C" fn(Raw) -> Raw = unsafe { sym(rt, "lean_io_getenv") };
    let key = lean::mk_string("CAPNP_LEAN_SURELY_UNSET_VARIABLE");
    // SAFETY: `key` is a live string lent for the call; the result is owned.
    let none = unsafe { Obj::from_raw(getenv(key.as_ptr())) };
    assert_eq!(none.unbox(), Some(0), "Option.none is the boxed scalar 0, no IO wrapper");
    let key = lean::mk_string("PATH");
    // SAFETY: as above, with another live key.
    let some = unsafe { Obj::from_raw(getenv(key.as_ptr())) };
    assert_eq!((some.tag(), some.ctor_num_objs()), (1, 1), "Option.some directly");
    assert_eq!(lean::string_str(&some.ctor_get_owned(0)), std::env::var("PATH").unwrap());
}

#[test]
fn rust_strings_equal_runtime_strings_and_survive_runtime_append() {
    let (rt, _t) = require_runtime!();
    // SAFETY: prototypes from lean.h v4.35.0.
    let from_bytes: unsafe extern "C" fn(*const u8, usize) -> Raw = unsafe { sym(rt, "lean_mk_string_from_bytes") };
    // SAFETY: `bool lean_string_eq_cold(b_lean_obj_arg, b_lean_obj_arg)` in lean.h v4.35.0.
    let eq_cold: unsafe extern "C" fn(Raw, Raw) -> bool = unsafe { sym(rt, "lean_string_eq_cold") };
    // SAFETY: `lean_obj_res lean_string_append(lean_obj_arg, b_lean_obj_arg)` in lean.h v4.35.0.
    let append: unsafe extern "C" fn(Raw, Raw) -> Raw = unsafe { sym(rt, "lean_string_append") };
    let text = "héllo, λ";
    let ours = lean::mk_string(text);
    // SAFETY: `text` is valid UTF-8 of the given length; the new string is owned.
    let theirs = unsafe { Obj::from_raw(from_bytes(text.as_ptr(), text.len())) };
    assert_eq!(lean::string_len(&ours), lean::string_len(&theirs));
    // SAFETY: both strings are live and only borrowed.
    assert!(unsafe { eq_cold(ours.as_ptr(), theirs.as_ptr()) });
    // The runtime grows (reallocates and frees) our allocation.
    // SAFETY: `ours` is given up to the runtime (consumed), `theirs` lent; the result is owned.
    let joined = unsafe { Obj::from_raw(append(ours.into_raw(), theirs.as_ptr())) };
    assert_eq!(lean::string_str(&joined), "héllo, λhéllo, λ");
    assert_eq!(lean::string_len(&joined), 16);
}

#[test]
fn byte_arrays_built_in_rust_are_grown_and_freed_by_the_runtime() {
    let (rt, _t) = require_runtime!();
    // SAFETY: `ByteArray.push : ByteArray → UInt8 → ByteArray`, consumes the array.
    let push: unsafe extern "C" fn(Raw, u8) -> Raw = unsafe { sym(rt, "lean_byte_array_push") };
    // SAFETY: `uint64_t lean_byte_array_hash(b_lean_obj_arg)` in lean.h v4.35.0.
    let hash: unsafe extern "C" fn(Raw) -> u64 = unsafe { sym(rt, "lean_byte_array_hash") };
    let bytes = lean::mk_byte_array(&[1, 2, 3]);
    assert_eq!(bytes.header().unwrap().other, 1, "element size 1");
    // SAFETY: `bytes` is consumed by the push; the grown array is owned.
    let grown = unsafe { Obj::from_raw(push(bytes.into_raw(), 4)) };
    assert_eq!(lean::byte_array_bytes(&grown), &[1, 2, 3, 4]);
    let same = lean::mk_byte_array(&[1, 2, 3, 4]);
    // SAFETY: both arrays are live and only borrowed.
    assert_eq!(unsafe { hash(grown.as_ptr()) }, unsafe { hash(same.as_ptr()) });
}

#[test]
fn constructor_scalar_fields_and_size_match_the_runtime_view() {
    let (rt, _t) = require_runtime!();
    // SAFETY: `size_t lean_object_byte_size(lean_object*)`.
    let byte_size: unsafe extern "C" fn(Raw) -> usize = unsafe { sym(rt, "lean_object_byte_size") };
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    let mut ctor = lean::alloc_ctor(3, 2, 13);
    ctor.ctor_set(0, lean::mk_string("field"));
    ctor.ctor_set(1, counted_class().wrap(Counted(&DROPS)));
    // SAFETY: 13 scalar bytes were allocated: u64 at 0, u32 at 8, u8 at 12.
    unsafe {
        ctor.ctor_set_scalar(0, u64::MAX - 1);
        ctor.ctor_set_scalar(8, 0xdead_beef_u32);
        ctor.ctor_set_scalar(12, 7_u8);
        assert_eq!(ctor.ctor_get_scalar::<u64>(0), u64::MAX - 1);
        assert_eq!(ctor.ctor_get_scalar::<u32>(8), 0xdead_beef);
        assert_eq!(ctor.ctor_get_scalar::<u8>(12), 7);
    }
    let h = ctor.header().unwrap();
    assert_eq!((h.tag, h.other, h.rc), (3, 2, 1));
    // SAFETY: `ctor` is a live object, only borrowed.
    assert_eq!(unsafe { byte_size(ctor.as_ptr()) }, 40, "8 header + 2*8 fields + 13 scalars, aligned");
    assert_eq!(h.cs_sz, 40);
    drop(ctor);
    assert_eq!(DROPS.load(Ordering::SeqCst), 1, "freeing the constructor released its external field");
}

#[test]
fn external_finalizer_runs_exactly_once_when_the_last_reference_goes() {
    let (_rt, _t) = require_runtime!();
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    let ext = counted_class().wrap(Counted(&DROPS));
    assert!(counted_class().get(&ext).is_some());
    assert!(counted_class().get(&lean::mk_string("not external")).is_none());
    let second = ext.clone();
    assert_eq!(ext.rc(), 2);
    drop(ext);
    assert_eq!(DROPS.load(Ordering::SeqCst), 0);
    assert_eq!(second.rc(), 1);
    drop(second);
    assert_eq!(DROPS.load(Ordering::SeqCst), 1);
}

#[test]
fn arrays_own_their_elements_and_survive_runtime_push() {
    let (rt, _t) = require_runtime!();
    // SAFETY: `Array.push : Array α → α → Array α`, consumes both.
    let push: unsafe extern "C" fn(Raw, Raw) -> Raw = unsafe { sym(rt, "lean_array_push") };
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    let items = (0..3).map(|_| counted_class().wrap(Counted(&DROPS))).collect();
    let array = lean::mk_array(items);
    assert_eq!(lean::array_len(&array), 3);
    let extra = counted_class().wrap(Counted(&DROPS));
    // SAFETY: both `array` and `extra` are consumed by the push; the result is owned.
    let array = unsafe { Obj::from_raw(push(array.into_raw(), extra.into_raw())) };
    assert_eq!(lean::array_len(&array), 4);
    let third = lean::array_get(&array, 2);
    assert_eq!(third.rc(), 2);
    drop(array);
    assert_eq!(DROPS.load(Ordering::SeqCst), 3, "the element we still hold survives");
    drop(third);
    assert_eq!(DROPS.load(Ordering::SeqCst), 4);
}

#[test]
fn multi_threaded_objects_count_downwards_and_free_on_another_thread() {
    let (rt, _t) = require_runtime!();
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    let ext = counted_class().wrap(Counted(&DROPS));
    ext.mark_mt();
    assert_eq!(ext.rc(), -1, "shared objects have negative counts");
    let other = ext.clone();
    assert_eq!(ext.rc(), -2);
    let raw = other.into_raw() as usize;
    std::thread::spawn(move || {
        let _t = rt.attach_current_thread();
        // SAFETY: the reference was moved to this thread; the object is marked multi-threaded.
        drop(unsafe { Obj::from_raw(raw as Raw) });
    })
    .join()
    .unwrap();
    assert_eq!(ext.rc(), -1);
    assert_eq!(DROPS.load(Ordering::SeqCst), 0);
    drop(ext);
    assert_eq!(DROPS.load(Ordering::SeqCst), 1);
}

#[test]
fn persistent_objects_are_never_counted_or_freed() {
    let (rt, _t) = require_runtime!();
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    let ext = counted_class().wrap(Counted(&DROPS));
    // SAFETY: `lean_mark_persistent` on a live object we own.
    unsafe { (rt.fns().lean_mark_persistent)(ext.as_ptr()) };
    assert_eq!(ext.rc(), 0);
    let copy = ext.clone();
    assert_eq!(copy.rc(), 0);
    drop(copy);
    drop(ext);
    assert_eq!(DROPS.load(Ordering::SeqCst), 0, "persistent objects are leaked on purpose");
}

unsafe extern "C" fn add3(a: Raw, b: Raw, c: Raw) -> Raw {
    abi::box_usize(abi::unbox(a) + abi::unbox(b) + abi::unbox(c))
}

unsafe extern "C" fn sum5(a: Raw, b: Raw, c: Raw, d: Raw, e: Raw) -> Raw {
    abi::box_usize([a, b, c, d, e].iter().map(|x| abi::unbox(*x)).sum())
}

unsafe extern "C" fn keep_second(held: Raw, x: Raw) -> Raw {
    // Standard calling convention: we own `held` and must release it.
    // SAFETY: owned argument.
    unsafe { lean::dec(held) };
    x
}

#[test]
fn closures_apply_partially_and_fully_through_the_runtime() {
    let (_rt, _t) = require_runtime!();
    // SAFETY: add3 takes three boxed arguments.
    let f = unsafe { lean::alloc_closure(add3 as *const _, 3, vec![Obj::boxed(1)]) };
    assert_eq!(f.tag(), abi::CLOSURE as usize);
    let partial = lean::apply(f.clone(), vec![Obj::boxed(2)]);
    assert_eq!(partial.tag(), abi::CLOSURE as usize, "under-application yields a closure");
    assert_eq!(lean::apply(partial, vec![Obj::boxed(3)]).unbox(), Some(6));
    assert_eq!(lean::apply(f.clone(), vec![Obj::boxed(10), Obj::boxed(20)]).unbox(), Some(31));
    // SAFETY: sum5 takes five boxed arguments; lean_apply_n path.
    let g = unsafe { lean::alloc_closure(sum5 as *const _, 5, vec![]) };
    let args = (1..=5).map(Obj::boxed).collect();
    assert_eq!(lean::apply(g.clone(), args).unbox(), Some(15));
    // The allocation-free form takes the same paths (lean_apply_2 and lean_apply_n).
    assert_eq!(lean::apply_array(f.clone(), [Obj::boxed(10), Obj::boxed(20)]).unbox(), Some(31));
    assert_eq!(lean::apply_array(g, [1, 2, 3, 4, 5].map(Obj::boxed)).unbox(), Some(15));
}

#[test]
fn arrays_built_from_an_iterator_own_their_elements() {
    let (_rt, _t) = require_runtime!();
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    let array = lean::mk_array_from((0..3).map(|_| counted_class().wrap(Counted(&DROPS))));
    assert_eq!(lean::array_len(&array), 3);
    assert_eq!(lean::array_get(&array, 1).rc(), 2, "the array holds one reference, the copy another");
    drop(array);
    assert_eq!(DROPS.load(Ordering::SeqCst), 3);
}

#[test]
fn closure_releases_its_fixed_arguments() {
    let (_rt, _t) = require_runtime!();
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    let ext = counted_class().wrap(Counted(&DROPS));
    // SAFETY: keep_second takes two owned arguments.
    let f = unsafe { lean::alloc_closure(keep_second as *const _, 2, vec![ext]) };
    let unused = f.clone();
    assert_eq!(lean::apply(f, vec![Obj::boxed(9)]).unbox(), Some(9));
    assert_eq!(DROPS.load(Ordering::SeqCst), 0, "the other closure reference still holds it");
    drop(unused);
    assert_eq!(DROPS.load(Ordering::SeqCst), 1);
}

#[test]
fn io_results_built_in_rust_read_back_and_render_user_errors() {
    let (_rt, _t) = require_runtime!();
    let ok = IoResult::ok(lean::mk_string("fine"));
    assert_eq!(ok.as_obj().header().unwrap().other, 1);
    assert_eq!(lean::string_str(&ok.into_result().unwrap()), "fine");
    let err = IoResult::user_error("it broke").into_result().unwrap_err();
    assert_eq!(err.message, "it broke");
}

#[test]
fn foreign_threads_attach_allocate_and_detach() {
    let (rt, _t) = require_runtime!();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let _outer = rt.attach_current_thread();
                let _nested = rt.attach_current_thread();
                let strings: Vec<Obj> = (0..1000).map(|j| lean::mk_string(&format!("t{i}-{j}"))).collect();
                let array = lean::mk_array(strings);
                lean::string_str(&lean::array_get(&array, 999)).to_string()
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), format!("t{i}-999"));
    }
}

#[test]
fn a_second_different_runtime_is_refused() {
    let (rt, _t) = require_runtime!();
    let again = LeanRuntime::open(rt.path().unwrap()).expect("same runtime again is fine");
    assert!(std::ptr::eq(again, rt));
    let err = LeanRuntime::open("/lib/x86_64-linux-gnu/libm.so.6".as_ref()).err().expect("refused");
    assert_eq!(err.code, "LEAN-RT-CONFLICT");
}

#[test]
fn rust_panics_are_still_caught_with_the_runtime_and_its_unwinder_loaded() {
    let (_rt, _t) = require_runtime!();
    // libleanshared bundles its own unwinder; it must not take over Rust's unwinding.
    let caught = std::panic::catch_unwind(|| {
        let _s = lean::mk_string("alive during unwinding");
        panic!("contained");
    });
    let payload = caught.expect_err("the panic is caught");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"contained"));
}

#[test]
fn constructors_beyond_the_small_object_limit_use_mi_malloc_and_are_freed_by_the_runtime() {
    let (rt, _t) = require_runtime!();
    // SAFETY: `size_t lean_object_byte_size(lean_object*)`.
    let byte_size: unsafe extern "C" fn(Raw) -> usize = unsafe { sym(rt, "lean_object_byte_size") };
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    let mut big = lean::alloc_ctor(0, 200, 0); // 8 + 1600 bytes > MI_SMALL_SIZE_MAX
    for i in 0..200 {
        big.ctor_set(i, counted_class().wrap(Counted(&DROPS)));
    }
    // SAFETY: `big` is a live object, only borrowed.
    assert_eq!(unsafe { byte_size(big.as_ptr()) }, 1608);
    drop(big);
    assert_eq!(DROPS.load(Ordering::SeqCst), 200, "the runtime freed the large constructor and its fields");
}
