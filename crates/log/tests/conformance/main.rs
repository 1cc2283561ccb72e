//! One conformance suite that every storage backend must pass, in the
//! style of openraft's log-store suite: each test is a function taking a
//! backend factory, and [`conformance_suite!`] instantiates all of them as
//! `#[test]`s per backend. A new backend adds one line at the bottom.

#[path = "../common/mod.rs"]
mod common;
mod suite_append;
mod suite_compaction;
mod suite_maintenance;
mod suite_raft_index;
mod suite_recovery;
mod suite_restore;
mod suite_storage;

/// Declares one `#[test]` per suite function, each calling it with `$factory`.
macro_rules! tests {
    ($factory:path; $($module:ident :: $test:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                crate::$module::$test($factory)
            }
        )*
    };
}

/// Instantiates the whole suite for one backend, in module `$backend`.
macro_rules! conformance_suite {
    ($backend:ident, $factory:path) => {
        mod $backend {
            tests! { $factory;
                suite_append::empty_log_serves_nothing,
                suite_append::append_assigns_dense_offsets_and_terms,
                suite_append::reads_are_byte_identical_whole_batches,
                suite_append::read_honours_max_bytes_but_returns_one_batch,
                suite_append::read_outside_the_log_is_out_of_range,
                suite_append::every_offset_is_found_through_the_index,
                suite_append::sequential_and_random_reads_agree,
                suite_append::segments_roll_and_are_named_by_base_offset,
                suite_append::bad_batches_are_refused_and_change_nothing,
                suite_append::term_going_backwards_is_refused,
                suite_append::replicated_append_checks_offset_raft_index_and_term,
                suite_append::offset_for_timestamp_finds_first_newer_record,
                suite_append::batch_headers_are_listed_across_segments,
                suite_compaction::compaction_serves_the_newest_record_per_key,
                suite_compaction::a_crash_at_any_step_of_the_swap_leaves_old_or_new,
                suite_compaction::a_commit_after_the_log_changed_does_nothing,
                suite_compaction::appends_between_plan_and_commit_are_kept,
                suite_compaction::a_tiny_key_map_converges_to_one_big_pass,
                suite_compaction::a_stale_or_missing_clean_point_gives_the_same_result,
                suite_compaction::repeated_passes_keep_the_segment_count_bounded,
                suite_compaction::offset_for_timestamp_skips_a_gap_to_the_next_survivor,
                suite_compaction::the_dirty_ratio_holds_a_pass_back_until_enough_is_dirty,
                suite_compaction::a_failed_commit_then_reopen_serves_old_or_new,
                suite_maintenance::truncate_after_keeps_whole_batches_up_to_offset,
                suite_maintenance::truncate_after_across_segments_then_append,
                suite_maintenance::truncate_after_outside_range_is_refused,
                suite_maintenance::purge_before_moves_start_and_survives_reopen,
                suite_maintenance::purge_everything_then_append,
                suite_maintenance::reset_restarts_the_log_at_an_offset,
                suite_maintenance::retention_by_size_deletes_oldest_segments,
                suite_maintenance::retention_by_age_deletes_expired_segments,
                suite_maintenance::retention_never_deletes_the_active_segment,
                suite_maintenance::sync_under_every_policy_keeps_data,
                suite_maintenance::roll_if_older_rolls_an_old_active_segment,
                suite_restore::a_staged_prefix_replaces_the_whole_log,
                suite_restore::bad_or_stale_chunks_are_refused,
                suite_restore::a_crash_at_any_step_of_a_restore_leaves_old_or_restored,
                suite_raft_index::raft_index_lookup_finds_every_batch,
                suite_raft_index::purge_keeps_the_raft_index,
                suite_raft_index::retention_keeps_the_raft_index,
                suite_raft_index::retention_point_is_where_retention_would_cut,
                suite_raft_index::truncate_rewinds_the_raft_index,
                suite_raft_index::truncate_of_the_straddling_batch_reuses_its_index,
                suite_raft_index::reset_continues_at_the_given_raft_index,
                suite_recovery::reopen_serves_the_same_log,
                suite_recovery::garbage_tail_is_cut,
                suite_recovery::torn_batch_tail_is_cut,
                suite_recovery::flipped_byte_in_tail_batch_is_cut,
                suite_recovery::missing_indexes_are_rebuilt,
                suite_recovery::garbage_indexes_are_rebuilt,
                suite_recovery::corruption_in_a_sealed_segment_is_never_served,
                suite_recovery::torn_sealed_segment_drops_later_segments,
                suite_recovery::damaged_log_start_file_is_an_error,
                suite_recovery::raft_index_out_of_sequence_in_the_tail_is_cut,
                suite_recovery::raft_index_gap_at_a_segment_start_drops_later_segments,
                suite_recovery::first_batch_must_follow_the_stored_raft_index,
                suite_storage::storage_appends_are_readable_at_once,
                suite_storage::storage_names_behave_like_a_directory,
                suite_storage::storage_atomic_write_replaces_a_file,
            }
        }
    };
}

conformance_suite!(file, crate::common::file_fixture);
conformance_suite!(memory, crate::common::memory_fixture);
