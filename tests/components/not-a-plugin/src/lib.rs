//! A component that targets no vigil world.
wit_bindgen::generate!({
    inline: "
        package acme:other;
        world other { export hello: func() -> string; }
    ",
    world: "other",
});

struct Other;

impl Guest for Other {
    fn hello() -> String {
        "hello".into()
    }
}

export!(Other);
