"""The pure decision core: standard library, holidays and zoneinfo only; time is always an argument."""
