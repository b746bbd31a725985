"""Pure domain: event records, money, months, rules, bonus arithmetic. No imports of ours."""
