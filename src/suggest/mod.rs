//! Draft rules for unexpected flows (`suggest`): how flows are grouped ([`group`]) and how a
//! group becomes a rule ([`draft`]).

pub mod draft;
pub mod group;

#[cfg(test)]
mod tests {
    use super::draft::*;
    use super::group::*;

    #[test]
    fn folds_world_addresses() {
        assert_eq!(fold("203.0.113.77".parse().expect("ip")), "203.0.113.0/24");
        assert_eq!(
            fold("2001:db8:1:2:3::9".parse().expect("ip")),
            "2001:db8:1:2::/64"
        );
    }

    #[test]
    fn slugs_are_label_safe() {
        assert_eq!(
            slug("egress-Shop/Check out-to-1.2.3.0/24-443-TCP"),
            "egress-shop-check-out-to-1.2.3.0-24-443-tcp"
        );
        assert!(slug(&"x".repeat(300)).len() <= 100);
    }
}
