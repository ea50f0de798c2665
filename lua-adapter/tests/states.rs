//! The module in two `lua_State`s of one process: each state has its own C types, cdata
//! metatables, finalizers and `tonumber`, whatever the order the states are used, closed or
//! run on other threads in. (Two copies of `ffi.so` in one state are tested in
//! `system_lua.rs`.)

use lua_adapter::surface::module;
use mlua::Lua;

/// A fresh Lua state with the module as the global `ffi`.
fn state_with_ffi() -> Lua {
    let lua = Lua::new();
    let ffi = module::open(&lua).unwrap();
    lua.globals().set("ffi", ffi).unwrap();
    lua
}

fn eval<T: mlua::FromLuaMulti>(lua: &Lua, code: &str) -> T {
    lua.load(code).eval().unwrap_or_else(|e| panic!("{code}: {e}"))
}

#[test]
fn two_states_declare_the_same_name_differently() {
    let a = state_with_ffi();
    let b = state_with_ffi();
    a.load("ffi.cdef 'struct shared_name { int x; }; typedef int only_in_a;'").exec().unwrap();
    b.load("ffi.cdef 'struct shared_name { char text[100]; };'").exec().unwrap();
    assert_eq!(eval::<usize>(&a, "return ffi.sizeof('struct shared_name')"), 4);
    assert_eq!(eval::<usize>(&b, "return ffi.sizeof('struct shared_name')"), 100);
    assert!(eval::<bool>(&a, "return ffi.sizeof('only_in_a') == 4"));
    let (ok, msg): (bool, String) = eval(&b, "return pcall(ffi.typeof, 'only_in_a')");
    assert!(!ok && msg.contains("only_in_a"), "B doesn't see A's typedef: {msg}");
}

#[test]
fn interleaved_use_and_collection_stay_apart() {
    let a = state_with_ffi();
    let b = state_with_ffi();
    for lua in [&a, &b] {
        lua.load("ffi.cdef 'struct obj { int id; double v; };' freed = 0 keep = {}").exec().unwrap();
    }
    for round in 0..50 {
        // Alternate states each round; each keeps some cdata and drops the rest, with a
        // finalizer counting its own collections.
        for (lua, n) in [(&a, 3), (&b, 5)] {
            lua.load(format!(
                "for i = 1, {n} do
                   local o = ffi.gc(ffi.new('struct obj', {{ {round} * 10 + i, i / 2 }}), function() freed = freed + 1 end)
                   if i == 1 then keep[#keep + 1] = o end
                 end
                 collectgarbage()"
            ))
            .exec()
            .unwrap();
        }
    }
    for (lua, n) in [(&a, 3u32), (&b, 5u32)] {
        lua.load("collectgarbage() collectgarbage()").exec().unwrap();
        let freed: u32 = eval(lua, "return freed");
        assert_eq!(freed, 50 * (n - 1), "every dropped cdata of this state finalized once");
        let ids: Vec<i64> = eval(lua, "local t = {} for i, o in ipairs(keep) do t[i] = o.id end return t");
        assert_eq!(ids, (0..50).map(|r| r * 10 + 1).collect::<Vec<_>>());
    }
    // Closing A runs A's remaining finalizers and frees A's state; B goes on unaffected.
    drop(a);
    let (count, sum): (u32, i64) =
        eval(&b, "collectgarbage() local s = 0 for _, o in ipairs(keep) do s = s + o.id end return #keep, s");
    assert_eq!((count, sum), (50, (0..50).map(|r| r * 10 + 1).sum()));
    assert_eq!(eval::<f64>(&b, "return tonumber(ffi.new('int64_t', 41)) + 1"), 42.0);
}

#[test]
fn each_state_wraps_its_own_tonumber() {
    let a = state_with_ffi();
    let b = Lua::new();
    b.load("original = tonumber").exec().unwrap();
    assert_eq!(eval::<f64>(&a, "return tonumber(ffi.new('double', 2.5))"), 2.5);
    // Opening the module in A left B's tonumber alone.
    assert!(eval::<bool>(&b, "return tonumber == original"));
    let module_in_b = module::open(&b).unwrap();
    b.globals().set("ffi", module_in_b).unwrap();
    assert!(eval::<bool>(&b, "return tonumber ~= original and tonumber('7') == 7 and tonumber('z', 36) == 35"));
    assert_eq!(eval::<f64>(&b, "return tonumber(ffi.new('float', 0.5))"), 0.5);
}

#[test]
fn states_on_separate_threads() {
    let workers: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let lua = state_with_ffi();
                lua.load(format!("ffi.cdef 'struct thread_rec {{ int v[{}]; }};'", t + 1)).exec().unwrap();
                let mut total = 0i64;
                for i in 0..200 {
                    total += eval::<i64>(
                        &lua,
                        &format!("local r = ffi.new('struct thread_rec') r.v[{t}] = {i} collectgarbage('step') return r.v[{t}] + ffi.sizeof(r)"),
                    );
                }
                (t, total)
            })
        })
        .collect();
    for w in workers {
        let (t, total) = w.join().unwrap();
        let size = 4 * (t as i64 + 1);
        assert_eq!(total, (0..200).sum::<i64>() + 200 * size, "thread {t}");
    }
}
