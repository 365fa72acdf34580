-- Nothing to undo: the rows hold what a replay of the log writes, which every release reads.
select 1;
