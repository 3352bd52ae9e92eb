pub struct Hipaa;

#[vigil_sdk::playbook]
impl Hipaa {
    fn evaluate() {}
}

fn main() {}
